"""Draw a procedure definition as Mermaid or Graphviz DOT text, straight from the YAML's data.

Administrators and reviewers check a procedure against the regulation far faster on a picture
than in YAML. The text is generated here rather than by ``transitions``' own diagrams so the
picture shows what the definition says (stages, roles, labels in Vietnamese) and needs no
Graphviz binaries: paste the Mermaid into any Markdown viewer, or run ``dot -Tsvg`` anywhere.
"""

from __future__ import annotations

import re
import unicodedata

from memberflow.workflow.definition import STAGES, Definition, State, Transition

# Fill and border colour of each stage, in both outputs.
STAGE_COLOURS = {
    "application": ("#dbeafe", "#1d4ed8"),
    "probation": ("#fef3c7", "#b45309"),
    "official": ("#dcfce7", "#15803d"),
    "removal": ("#fee2e2", "#b91c1c"),
}
# Words Mermaid's state diagrams or DOT treat as keywords, never used as a bare id.
RESERVED = frozenset({"state", "note", "end", "as", "class", "classdef", "direction", "style",
                      "graph", "digraph", "subgraph", "node", "edge", "strict"})
# Mermaid decodes ``#name;`` / ``#nn;`` entity codes before parsing: the only safe way to put a
# quote, ``#``, ``;``, ``%`` or an angle bracket into a label.
_MERMAID_ENTITIES = {"#": "#35;", '"': "#quot;", ";": "#59;", "%": "#37;", "<": "#lt;", ">": "#gt;"}


def state_ids(definition: Definition) -> dict[str, str]:
    """A safe, unique ASCII identifier per state (YAML state names may be any text)."""
    ids: dict[str, str] = {}
    for name in definition.states:
        base = re.sub(r"[^A-Za-z0-9_]", "_", _ascii(name))
        if not re.match(r"[A-Za-z]", base) or base.lower() in RESERVED:
            base = f"s_{base}"  # never starts with "_": the DOT start node is "__start"
        ident, n = base, 2
        while ident in ids.values():
            ident, n = f"{base}_{n}", n + 1
        ids[name] = ident
    return ids


def _ascii(text: str) -> str:
    """Vietnamese without diacritics (``đã học`` → ``da hoc``), so ids stay readable."""
    text = text.replace("đ", "d").replace("Đ", "D")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def edge_label(transition: Transition) -> str:
    """``trigger (role, role)``: what an officer types and who may type it."""
    return f"{transition.trigger} ({', '.join(transition.roles)})"


def edges(definition: Definition) -> list[tuple[str, str, Transition]]:
    """(source, destination, move) for every move from every source state, in YAML order."""
    return [(source, t.destination(source), t) for t in definition.transitions for source in t.sources]


def _by_stage(definition: Definition) -> list[tuple[str, list[State]]]:
    """States grouped by stage, stages in lifecycle order (unknown ones last, in YAML order)."""
    stages = dict.fromkeys([*STAGES, *(s.stage for s in definition.states.values())])
    groups = [(stage, [s for s in definition.states.values() if s.stage == stage]) for stage in stages]
    return [(stage, members) for stage, members in groups if members]


def _one_line(text: str) -> str:
    return " ".join(text.split())


# -- Mermaid --------------------------------------------------------------------------------------
def mermaid_text(text: str) -> str:
    return "".join(_MERMAID_ENTITIES.get(c, c) for c in _one_line(text))


def mermaid(definition: Definition, lang: str = "vi") -> str:
    """A ``stateDiagram-v2``: states labelled in ``lang`` and coloured by stage, [*] at both ends."""
    ids = state_ids(definition)
    lines = ["stateDiagram-v2",
             f"%% {mermaid_text(definition.name)}: {mermaid_text(definition.title.get(lang))}"]
    states = definition.states.values()
    lines += [f'state "{mermaid_text(s.labels.get(lang))}" as {ids[s.name]}' for s in states]
    lines.append(f"[*] --> {ids[definition.initial]}")
    lines += [f"{ids[src]} --> {ids[dst]} : {mermaid_text(edge_label(t))}"
              for src, dst, t in edges(definition)]
    lines += [f"{ids[s.name]} --> [*]" for s in states if s.terminal]
    for stage, members in _by_stage(definition):
        if stage in STAGE_COLOURS:
            fill, stroke = STAGE_COLOURS[stage]
            lines.append(f"classDef {stage} fill:{fill},stroke:{stroke}")
            lines.append(f"class {','.join(ids[s.name] for s in members)} {stage}")
    return "\n".join([lines[0], *(f"    {line}" for line in lines[1:])]) + "\n"


# -- Graphviz DOT ---------------------------------------------------------------------------------
def dot_string(text: str) -> str:
    """A double-quoted DOT string: backslash and quote escaped, one line."""
    return '"' + _one_line(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot(definition: Definition, lang: str = "vi") -> str:
    """A ``digraph`` with one cluster per stage; terminal states have a double border."""
    ids = state_ids(definition)
    lines = [f"digraph {dot_string(definition.name)} {{",
             f"  graph [label={dot_string(definition.title.get(lang))}, labelloc=t, rankdir=TB];",
             '  node [shape=box, style="rounded,filled", fillcolor=white];',
             "  edge [fontsize=10];",
             '  __start [shape=point, width=0.15, label=""];']
    for index, (stage, members) in enumerate(_by_stage(definition)):
        fill, stroke = STAGE_COLOURS.get(stage, ("#f3f4f6", "#6b7280"))
        lines += [f"  subgraph cluster_{index} {{",
                  f'    label={dot_string(stage)}; style="rounded,filled"; fillcolor="{fill}"; '
                  f'color="{stroke}";']
        lines += [f"    {ids[s.name]} [label={dot_string(s.labels.get(lang))}"
                  f"{', peripheries=2' if s.terminal else ''}];" for s in members]
        lines.append("  }")
    lines.append(f"  __start -> {ids[definition.initial]};")
    lines += [f"  {ids[src]} -> {ids[dst]} [label={dot_string(edge_label(t))}];"
              for src, dst, t in edges(definition)]
    return "\n".join([*lines, "}"]) + "\n"
