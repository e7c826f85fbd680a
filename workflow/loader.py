"""Build a ``Definition`` from YAML text, reporting every problem with file and line.

Nothing here runs text from the file: guard names are looked up in the fixed registry,
and every reference (state, role, document, input, fact) is checked against the file.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

from memberflow.errors import DefinitionInvalid, Problem
from memberflow.i18n import _
from memberflow.workflow.assessment import parse_assessment
from memberflow.workflow.definition import (
    LANGUAGES,
    STAGES,
    Deadline,
    Definition,
    Derivation,
    GuardUse,
    InputSpec,
    Labels,
    State,
    Transition,
)
from memberflow.workflow.guards import EDUCATION_LEVELS, REGISTRY, current_guards, parse_ratio
from memberflow.workflow.inputs import HIDDEN_CATEGORIES as HIDDEN
from memberflow.workflow.inputs import INPUT_TYPES
from memberflow.workflow.personal_data import parse_personal_data
from memberflow.workflow.readmission import parse_readmission
from memberflow.workflow.yaml_source import LineDict, LineList, parse_yaml, read_text

TOP_KEYS = {"name", "title", "regulation", "initial", "opened_by", "roles", "documents",
            "states", "transitions", "assessment", "readmission", "personal_data"}
STATE_KEYS = {"labels", "stage", "terminal"}
TRANSITION_KEYS = {"trigger", "labels", "source", "dest", "stays", "roles", "guards",
                   "documents", "inputs", "records", "deadline", "extends_deadline", "automatic",
                   "separate_from", "clears"}
INPUT_KEYS = {"type", "labels", "required", "choices"}
DEADLINE_KEYS = {"within", "from", "extension"}
PERIOD_UNITS = ("working_days", "months")
DERIVATION_KEYS = {"from", "add_months"}  # records: {FACT: {from: OTHER, add_months: N}}
# Bounds that keep date arithmetic inside the calendar (a deadline of 10 million working days
# would run past year 9999) and names inside their database columns.
MAX_PERIOD, MAX_WHOLE, MAX_LABEL, MAX_NAME = 3650, 10_000, 300, 100
STATE_ENTERED = "state_entered_on"


class _Checker:
    """Collects problems while building, so one run reports all of them."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, line: int, message: str) -> None:
        self.problems.append(Problem(self.file, line, message))

    def mapping(self, value: Any, line: int, what: str) -> LineDict | None:
        if isinstance(value, LineDict):
            return value
        self.add(line, _("{what} must be a mapping").format(what=what))
        return None

    def unknown_keys(self, data: LineDict, allowed: set[str], what: str) -> None:
        for key in data:
            if key not in allowed:
                self.add(data.line_of(key), _("{what} has unknown key {key!r}").format(what=what, key=key))

    def text(self, data: LineDict, key: str, what: str, required: bool = True) -> str | None:
        value = data.get(key)
        if value is None:
            if required:
                self.add(data.line, _("{what} has no {key}").format(what=what, key=key))
            return None
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_LABEL \
                or any(unicodedata.category(c) in HIDDEN for c in value):
            self.add(data.line_of(key), _("{what}: {key} must be non-empty text of at most {max_label} "
                                          "characters with no control character").format(
                                            what=what, key=key, max_label=MAX_LABEL))
            return None
        return value

    def labels(self, data: LineDict, key: str, what: str) -> Labels:
        raw = data.get(key)
        if raw is None:
            self.add(data.line, _("{what} is missing its labels (vi and en)").format(what=what))
            return Labels(what, what)
        block = self.mapping(raw, data.line_of(key), _("{what} labels").format(what=what))
        if block is None:
            return Labels(what, what)
        for lang in LANGUAGES:
            if not isinstance(block.get(lang), str) or not block[lang].strip():
                self.add(block.line_of(lang), _("{what} is missing its {lang!r} label").format(
                                                  what=what, lang=lang))
            elif len(block[lang]) > MAX_LABEL or any(unicodedata.category(c) in HIDDEN for c in block[lang]):
                self.add(block.line_of(lang), _("{what}: the {lang!r} label must be at most {max_label} "
                                                "characters with no control character").format(
                                                  what=what, lang=lang, max_label=MAX_LABEL))
        self.unknown_keys(block, set(LANGUAGES), _("{what} labels").format(what=what))
        return Labels(str(block.get("vi", what)), str(block.get("en", what)))

    def names(self, data: LineDict, key: str, what: str) -> list[tuple[str, int]]:
        """A single name or a list of names, each with its line."""
        raw = data.get(key)
        if isinstance(raw, str):
            return [(raw, data.line_of(key))]
        if isinstance(raw, LineList) and all(isinstance(item, str) for item in raw):
            return [(item, raw.line_of(i)) for i, item in enumerate(raw)]
        if raw is not None:
            self.add(data.line_of(key), _("{what}: {key} must be a name or a list of names").format(
                                            what=what, key=key))
        return []


    def references(self, spec: LineDict, key: str, what: str, known: Mapping[str, Any],
                   when_none: str | None, when_unknown: str) -> tuple[str, ...]:
        """Names under ``key`` (one or a list), each checked against what the file defines."""
        names = self.names(spec, key, what)
        if not names and when_none:
            self.add(spec.line, f"{what} {when_none}")
        for name, line in names:
            if name not in known:
                self.add(line, f"{what} {when_unknown} {name!r}")
        return tuple(name for name, _ in names)

    def section(self, top: LineDict, key: str, allowed: set[str]) -> LineDict | None:
        """An optional top-level block (None when absent, or reported when not a mapping)."""
        if key not in top:
            return None
        block = self.mapping(top[key], top.line_of(key), key)
        if block is not None:
            self.unknown_keys(block, allowed, key)
        return block


def load_definition(path: str | Path) -> Definition:
    path = Path(path)
    return parse_definition(read_text(path), str(path))


@lru_cache(maxsize=32)
def parse_definition(text: str, file: str) -> Definition:
    """Validate and build a definition; the same text is parsed once per process.

    Parsing the bundled procedure costs a quarter of a second, and every service, replay
    worker and CLI command that reads a stored version would otherwise pay it again. A
    ``Definition`` is immutable, so sharing one is safe.
    """
    data, problems = parse_yaml(text, file)
    check = _Checker(file)
    check.problems.extend(problems)
    if data is None:
        raise DefinitionInvalid(check.problems or [Problem(file, 1, _("the file is empty"))])
    top = check.mapping(data, 1, _("the definition"))
    if top is None:
        raise DefinitionInvalid(check.problems)
    definition = _build(top, check, text, file)
    if check.problems:
        raise DefinitionInvalid(sorted(check.problems, key=lambda p: p.line))
    return definition


def _build(top: LineDict, check: _Checker, text: str, file: str) -> Definition:
    check.unknown_keys(top, TOP_KEYS, _("the definition"))
    name = check.text(top, "name", _("the definition")) or "unnamed"
    if len(name) > MAX_NAME:
        check.add(top.line_of("name"),
                  _("the definition's name must be at most {max_name} characters").format(max_name=MAX_NAME))
    roles = _catalogue(top, "roles", check)
    documents = _catalogue(top, "documents", check)
    states = _states(top, check)
    transitions = _transitions(top, check, states, roles, documents)
    initial = check.text(top, "initial", _("the definition")) or ""
    if initial and initial not in states:
        check.add(top.line_of("initial"), _("initial state {initial!r} is not a known state").format(
                                              initial=initial))
    opened_by = check.names(top, "opened_by", _("the definition"))
    if not opened_by:
        check.add(top.line, _("the definition has no opened_by (roles that may open a case)"))
    for role, line in opened_by:
        if role not in roles:
            check.add(line, _("opened_by names unknown role {role!r}").format(role=role))
    for problem in graph_problems(states, transitions, initial):
        check.add(problem.line, problem.message)
    _check_fact_references(check, transitions)
    return Definition(
        name=name,
        title=check.labels(top, "title", _("the definition")),
        regulation=str(top.get("regulation", "")),
        initial=initial,
        opened_by=tuple(role for role, _ in opened_by),
        roles=roles,
        documents=documents,
        states=states,
        transitions=tuple(transitions),
        sha256=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        source=text,
        file=file,
        assessment=parse_assessment(top, check, roles, transitions, STAGES),
        readmission=parse_readmission(top, check, states, documents),
        personal_data=parse_personal_data(top, check, roles),
    )


def _catalogue(top: LineDict, key: str, check: _Checker) -> dict[str, Labels]:
    block = check.mapping(top.get(key), top.line_of(key), key)
    if block is None:
        return {}
    return {str(code): check.labels(block, code, f"{key[:-1]} {code!r}") for code in block}


def _states(top: LineDict, check: _Checker) -> dict[str, State]:
    block = check.mapping(top.get("states"), top.line_of("states"), "states")
    states: dict[str, State] = {}
    for name in block or {}:
        line = block.line_of(name)
        spec = check.mapping(block[name], line, _("state {name!r}").format(name=name))
        if spec is None:
            continue
        spec.line = line
        check.unknown_keys(spec, STATE_KEYS, _("state {name!r}").format(name=name))
        stage = spec.get("stage")
        if stage not in STAGES:
            check.add(spec.line_of("stage"),
                      _("state {name!r} has stage {stage!r}; use one of {stages}").format(
                          name=name, stage=stage, stages=', '.join(STAGES)))
        terminal = spec.get("terminal", False)
        if not isinstance(terminal, bool):
            check.add(spec.line_of("terminal"), _("state {name!r}: terminal must be true or false").format(
                                                    name=name))
        labels = check.labels(spec, "labels", _("state {name!r}").format(name=name))
        states[str(name)] = State(str(name), labels, str(stage), terminal is True, line)
    return states


def _transitions(top: LineDict, check: _Checker, states: dict[str, State],
                 roles: dict[str, Labels], documents: dict[str, Labels]) -> list[Transition]:
    raw = top.get("transitions")
    if not isinstance(raw, LineList):
        check.add(top.line_of("transitions"), _("transitions must be a list"))
        return []
    result: list[Transition] = []
    seen: dict[tuple[str, str], int] = {}
    for index, item in enumerate(raw):
        spec = check.mapping(item, raw.line_of(index), _("a transition"))
        if spec is None:
            continue
        transition = _transition(spec, check, states, roles, documents)
        for source in transition.sources:
            key = (transition.trigger, source)
            if key in seen:
                check.add(spec.line, _("trigger {trigger!r} is defined twice from state {source!r} (first "
                                       "on line {seen})").format(
                                         trigger=transition.trigger, source=source, seen=seen[key]))
            seen.setdefault(key, spec.line)
        result.append(transition)
    _check_extensions(check, result)
    _check_separations(check, result)
    return _with_implicit_records(result)


def _transition(spec: LineDict, check: _Checker, states: dict[str, State],
                roles: dict[str, Labels], documents: dict[str, Labels]) -> Transition:
    trigger = check.text(spec, "trigger", _("a transition")) or "?"
    what = _("transition {trigger!r}").format(trigger=trigger)
    check.unknown_keys(spec, TRANSITION_KEYS, what)
    sources = check.references(spec, "source", what, states, _("has no source state"),
                          _("starts from unknown state"))
    dest = _destination(spec, check, states, what)
    roles_named = check.references(spec, "roles", what, roles,
                              _("names no role allowed to fire it"), _("names unknown role"))
    docs = check.references(spec, "documents", what, documents, None,
                       _("requires unknown document"))
    inputs = _inputs(spec, check, what)
    guards = _guards(spec, check, what, {i.name: i for i in inputs}, documents)
    return Transition(
        trigger=trigger,
        labels=check.labels(spec, "labels", what),
        sources=sources,
        dest=dest,
        roles=roles_named,
        guards=tuple(guards),
        documents=docs,
        inputs=tuple(inputs),
        records=_records(spec, check, what),
        deadline=_deadline(spec, check, what),
        extends_deadline=_extends(spec, check, what),
        automatic=_automatic(spec, check, what, inputs, docs),
        separate_from=tuple(name for name, _ in check.names(spec, "separate_from", what)),
        clears=tuple(name for name, _ in check.names(spec, "clears", what)),
        line=spec.line,
        key_lines=_key_lines(spec),
    )


def _automatic(spec: LineDict, check: _Checker, what: str, inputs: list[InputSpec],
               documents: tuple[str, ...]) -> bool:
    """``automatic: true``: ``memberflow tick`` makes the move once its guards hold. Time
    alone decides it, so it can take no inputs and need no documents."""
    value = spec.get("automatic", False)
    if not isinstance(value, bool):
        check.add(spec.line_of("automatic"), _("{what}: automatic must be true or false").format(what=what))
        return False
    if value and (inputs or documents):
        check.add(spec.line_of("automatic"), _("{what}: an automatic move can take no inputs or documents "
                                               "(no one gives them when time makes the move)").format(
                                                 what=what))
    return value


def _extends(spec: LineDict, check: _Checker, what: str) -> str | None:
    target = spec.get("extends_deadline")
    if target is not None and not isinstance(target, str):
        check.add(spec.line_of("extends_deadline"), _("{what}: extends_deadline must name a move").format(
                                                        what=what))
        return None
    return target


def _key_lines(spec: LineDict) -> dict[str, int]:
    """Lines of nested keys, so later checks can point at the exact line."""
    lines = {str(key): spec.line_of(key) for key in spec}
    for section in ("records", "deadline"):
        block = spec.get(section)
        if isinstance(block, LineDict):
            lines.update({f"{section}.{key}": block.line_of(key) for key in block})
    return lines


def _destination(spec: LineDict, check: _Checker, states: dict[str, State],
                 what: str) -> str | None:
    stays = spec.get("stays", False)
    if stays is True:
        if "dest" in spec:
            check.add(spec.line_of("dest"), _("{what} has both dest and stays: true").format(what=what))
        return None
    if stays is not False:
        check.add(spec.line_of("stays"), _("{what}: stays must be true or false").format(what=what))
    dest = check.text(spec, "dest", what)
    if dest and dest not in states:
        check.add(spec.line_of("dest"), _("{what} leads to unknown state {dest!r}").format(
                                            what=what, dest=dest))
    return dest


def _inputs(spec: LineDict, check: _Checker, what: str) -> list[InputSpec]:
    if "inputs" not in spec:
        return []
    block = check.mapping(spec["inputs"], spec.line_of("inputs"), _("{what} inputs").format(what=what))
    result = []
    for name in block or {}:
        item = check.mapping(block[name], block.line_of(name), _("{what} input {name!r}").format(
                                                                   what=what, name=name))
        if item is None:
            continue
        item.line = block.line_of(name)
        check.unknown_keys(item, INPUT_KEYS, _("{what} input {name!r}").format(what=what, name=name))
        kind = item.get("type")
        if kind not in INPUT_TYPES:
            check.add(item.line_of("type"), _("{what} input {name!r} has unknown type {kind!r}; use one of "
                                              "{input_types}").format(
                                                what=what, name=name, kind=kind,
                                                input_types=', '.join(INPUT_TYPES)))
        choices = item.get("choices", [])
        if not isinstance(choices, list) or not all(isinstance(c, str | int) for c in choices):
            choices = []
        if kind == "choice" and not choices:
            check.add(item.line, _("{what} input {name!r} of type choice needs a list of choices").format(
                                     what=what, name=name))
        required = item.get("required", True)
        if not isinstance(required, bool):
            check.add(item.line_of("required"),
                      _("{what} input {name!r}: required must be true or false").format(what=what, name=name))
        labels = check.labels(item, "labels", _("{what} input {name!r}").format(what=what, name=name))
        result.append(InputSpec(str(name), str(kind), labels, required is not False,
                                tuple(str(c) for c in choices or ())))
    return result


def _guards(spec: LineDict, check: _Checker, what: str, inputs: dict[str, InputSpec],
            documents: dict[str, Labels]) -> list[GuardUse]:
    if "guards" not in spec:
        return []
    raw = spec["guards"]
    if not isinstance(raw, LineList):
        check.add(spec.line_of("guards"), _("{what}: guards must be a list").format(what=what))
        return []
    result = []
    for index, item in enumerate(raw):
        line = raw.line_of(index)
        if not isinstance(item, LineDict) or len(item) != 1:
            check.add(line, _("{what}: each guard is written as 'name: {{parameters}}'").format(what=what))
            continue
        (name, params), = item.items()
        guard = REGISTRY.get(name)
        if guard is None:
            check.add(line, _("{what} uses unknown guard {name!r}; known guards: {names}").format(
                                what=what, name=name, names=', '.join(current_guards())))
            continue
        if not isinstance(params, LineDict):
            check.add(line, _("{what}: guard {name!r} needs a mapping of parameters").format(
                                what=what, name=name))
            continue
        params.line = line
        _check_params(check, what, guard.name, guard.params, params, inputs, documents)
        result.append(GuardUse(name, dict(params), line, dict(params.key_lines)))
    return result


def _check_params(check: _Checker, what: str, guard: str, schema: Any, params: LineDict,
                  inputs: dict[str, InputSpec], documents: dict[str, Labels]) -> None:
    where = _("{what} guard {guard!r}").format(what=what, guard=guard)
    for key in params:
        if key not in schema:
            check.add(params.line_of(key), _("{where} has unknown parameter {key!r}; expected "
                                             "{expected}").format(where=where, key=key,
                                                                  expected=', '.join(schema)))
    for key, param in schema.items():
        if key not in params:
            if param.required:
                check.add(params.line, _("{where} is missing parameter {key!r}").format(where=where, key=key))
            continue
        problem = _param_problem(param, params[key], inputs, documents)
        if problem:
            check.add(params.line_of(key), _("{where} parameter {key!r} {problem}").format(
                                               where=where, key=key, problem=problem))


def _param_problem(param: Any, value: Any, inputs: dict[str, InputSpec],
                   documents: dict[str, Labels]) -> str | None:
    if param.kind == "date_refs":
        if not isinstance(value, list) or len(value) < 2 or not all(isinstance(v, str) for v in value):
            return _("must be a list of at least two date names, not {value!r}").format(value=value)
        return None
    if param.kind in ("input", "document", "education", "text", "date_ref") \
            and not isinstance(value, str):
        return _("must be a name, not {value!r}").format(value=value)
    if param.kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            return _("must be a whole number, not {value!r}").format(value=value)
        if param.minimum is not None and value < param.minimum:
            return _("must be at least {minimum}, not {value}").format(minimum=param.minimum, value=value)
        if value > MAX_WHOLE:
            return _("must be at most {max_whole:,} (years, months or counts), not {value}").format(
                       max_whole=MAX_WHOLE, value=value)
    elif param.kind == "ratio" and parse_ratio(value) is None:
        return _("must be a ratio such as 2/3 or 0.5 between 0 and 1, not {value!r}").format(value=value)
    elif param.kind in ("text", "date_ref") and (not isinstance(value, str) or not value):
        return _("must be non-empty text, not {value!r}").format(value=value)
    elif param.kind == "input" and value not in inputs:
        return _("names {value!r}, which is not an input of this transition").format(value=value)
    elif param.kind == "input" and param.input_types and inputs[value].type in INPUT_TYPES \
            and inputs[value].type not in param.input_types:
        return (_("names input {value!r} of type {type}; it must be of type {input_types}").format(
                    value=value, type=inputs[value].type, input_types=_(' or ').join(param.input_types)))
    elif param.kind == "document" and value not in documents:
        return _("names unknown document {value!r}").format(value=value)
    elif param.kind == "education" and value not in EDUCATION_LEVELS:
        return _("must be one of {education_levels}, not {value!r}").format(
                   education_levels=', '.join(EDUCATION_LEVELS), value=value)
    return None


def _records(spec: LineDict, check: _Checker, what: str) -> dict[str, Derivation]:
    if "records" not in spec:
        return {}
    block = check.mapping(spec["records"], spec.line_of("records"), _("{what} records").format(what=what))
    result: dict[str, Derivation] = {}
    for fact in block or {}:
        value, line = block[fact], block.line_of(fact)
        if isinstance(value, str):
            result[str(fact)] = Derivation(value)
        elif isinstance(value, LineDict) and set(value) == DERIVATION_KEYS \
                and isinstance(value["add_months"], int) and isinstance(value["from"], str):
            result[str(fact)] = Derivation(value["from"], value["add_months"])
        else:
            check.add(line, _("{what} records {fact!r} as business_date, a fact name, or {{from: FACT, "
                              "add_months: N}}").format(what=what, fact=fact))
    return result


def _deadline(spec: LineDict, check: _Checker, what: str) -> Deadline | None:
    if "deadline" not in spec:
        return None
    block = check.mapping(spec["deadline"], spec.line_of("deadline"), _("{what} deadline").format(what=what))
    if block is None:
        return None
    check.unknown_keys(block, DEADLINE_KEYS, _("{what} deadline").format(what=what))
    within = _period(check, block, "within", _("{what} deadline").format(what=what))
    extension = _period(check, block, "extension", _("{what} deadline extension").format(
                                                       what=what), optional=True)
    if extension and extension[1] != "working_days":
        check.add(block.line_of("extension"), _("{what} deadline extension must be in working_days").format(
                                                  what=what))
    start = block.get("from", STATE_ENTERED)
    if not isinstance(start, str):
        check.add(block.line_of("from"), _("{what} deadline: from must name a recorded date").format(
                                             what=what))
        start = STATE_ENTERED
    if within is None:
        return None
    return Deadline(within[0], within[1], start, extension[0] if extension else 0)


def _period(check: _Checker, block: LineDict, key: str, what: str,
            optional: bool = False) -> tuple[int, str] | None:
    if key not in block:
        if not optional:
            check.add(block.line, _("{what} has no {key}").format(what=what, key=key))
        return None
    period = block[key]
    if isinstance(period, LineDict) and len(period) == 1:
        (unit, amount), = period.items()
        if unit in PERIOD_UNITS and isinstance(amount, int) and amount > MAX_PERIOD:
            check.add(block.line_of(key), _("{what}: {key} is at most {max_period:,} {unit}").format(
                                              what=what, key=key, max_period=MAX_PERIOD, unit=unit))
            return None
        if unit in PERIOD_UNITS and isinstance(amount, int) and amount > 0:
            return amount, unit
    check.add(block.line_of(key), _("{what}: {key} must be {{working_days: N}} or {{months: N}} with N a "
                                    "positive whole number").format(what=what, key=key))
    return None


def _check_separations(check: _Checker, transitions: list[Transition]) -> None:
    """``separate_from`` names moves of this definition, other than the move itself."""
    triggers = {t.trigger for t in transitions}
    for transition in transitions:
        for name in transition.separate_from:
            if name not in triggers:
                check.add(transition.line_of("separate_from"), _("transition {trigger!r} is kept apart "
                                                                 "from unknown move {name!r}").format(
                                                                   trigger=transition.trigger, name=name))
            elif name == transition.trigger:
                check.add(transition.line_of("separate_from"), _("transition {trigger!r} cannot be kept "
                                                                 "apart from itself").format(
                                                                   trigger=transition.trigger))


def _check_extensions(check: _Checker, transitions: list[Transition]) -> None:
    with_deadline = {t.trigger for t in transitions if t.deadline and t.deadline.extension_working_days}
    for transition in transitions:
        target = transition.extends_deadline
        if target is not None and target not in with_deadline:
            check.add(transition.line_of("extends_deadline"),
                      _("transition {trigger!r} extends the deadline of {target!r}, which has no "
                        "extendable deadline").format(trigger=transition.trigger, target=target))


@dataclass(frozen=True)
class GraphProblem:
    line: int
    kind: str  # terminal-exit | dead-end-state | unreachable-state
    message: str


def graph_problems(states: Mapping[str, State], transitions: Sequence[Transition],
                   initial: str) -> list[GraphProblem]:
    """Terminal states with exits, non-terminal states with no way out, unreachable states:
    checked when a file is loaded, and again by lint on any ``Definition`` object."""
    exits: dict[str, set[str]] = {name: set() for name in states}
    for t in transitions:
        for source in t.sources:
            if source in exits and t.destination(source) in states:
                exits[source].add(t.destination(source))
    found = []
    for name, state in states.items():
        leaving = exits[name] - {name}
        if state.terminal and exits[name]:
            found.append(GraphProblem(state.line, "terminal-exit",
                                      _("terminal state {name!r} has moves out of it").format(name=name)))
        elif not state.terminal and not leaving:
            found.append(GraphProblem(state.line, "dead-end-state",
                                      _("state {name!r} is not terminal but has no way out").format(
                                          name=name)))
    if initial not in states:
        return found
    reached, queue = {initial}, deque([initial])
    while queue:
        for nxt in exits[queue.popleft()] - reached:
            reached.add(nxt)
            queue.append(nxt)
    return found + [GraphProblem(state.line, "unreachable-state",
                                 _("state {name!r} cannot be reached from {initial!r}").format(
                                     name=name, initial=initial))
                    for name, state in states.items() if name not in reached]


def _recorded_facts(transitions: Sequence[Transition]) -> set[str]:
    """Facts some move records, and those every case has."""
    return {STATE_ENTERED, "business_date", "opened_on"}.union(*(t.records for t in transitions))


def _date_inputs(t: Transition) -> set[str]:
    return {spec.name for spec in t.inputs if spec.type == "date"}


class _DateRead(NamedTuple):
    name: str
    line: int
    reader: str  # what reads it, as a problem names it
    own_input_counts: bool  # a date input of the move itself gives it (not so for a deadline)


def _dates_read(t: Transition) -> Iterator[_DateRead]:
    """Every date a move's records, deadline and guards read."""
    for fact, derivation in t.records.items():
        if fact not in t.implicit_records:
            yield _DateRead(derivation.source, t.line_of(f"records.{fact}"),
                            _("records {fact!r} from").format(fact=fact), True)
    if t.deadline:
        yield _DateRead(t.deadline.start, t.line_of("deadline.from"), _("deadline counts from"), False)
    for guard in t.guards:
        for key, param in REGISTRY[guard.name].params.items():
            value = guard.params.get(key)
            names = value if param.kind == "date_refs" and isinstance(value, list) else \
                [value] if param.kind == "date_ref" else []
            for name in names:
                if isinstance(name, str):
                    yield _DateRead(name, guard.param_lines.get(key, guard.line),
                                    _("guard {name!r} reads").format(name=guard.name), True)


def _with_implicit_records(transitions: list[Transition]) -> list[Transition]:
    """Before ``records`` were explicit, a move's date inputs were facts for every later move
    (the engine recorded all inputs). A date read that way — by another move, with no move
    recording it — is recorded by each move taking it as an input, so those versions keep
    their meaning; in a definition valid today there is no such date, and nothing changes."""
    recorded = _recorded_facts(transitions)
    taken = set().union(*(_date_inputs(t) for t in transitions))
    implicit = {read.name for t in transitions for read in _dates_read(t)
                if read.name in taken - recorded - _date_inputs(t)}
    result = []
    for t in transitions:
        mine = tuple(sorted(implicit & _date_inputs(t)))
        result.append(replace(t, records={**t.records, **{name: Derivation(name) for name in mine}},
                              implicit_records=mine) if mine else t)
    return result


def _check_fact_references(check: _Checker, transitions: list[Transition]) -> None:
    """Dates guards, records and deadlines read must be recorded by some move (``records``),
    or be a date input of the same move."""
    facts = _recorded_facts(transitions)
    for t in transitions:
        for read in _dates_read(t):
            if read.name not in facts and not (read.own_input_counts and read.name in _date_inputs(t)):
                check.add(read.line, _("transition {trigger!r} {reader} {name!r}, which no move "
                                       "records").format(trigger=t.trigger, reader=read.reader,
                                                         name=read.name))
        for name in t.clears:
            proposer = name.startswith("made_by.") and any(
                name == f"made_by.{x}" for other in transitions for x in other.separate_from)
            if name not in facts and not proposer:
                check.add(t.line_of("clears"), _("transition {trigger!r} clears {name!r}, which no move "
                                                 "records").format(trigger=t.trigger, name=name))
