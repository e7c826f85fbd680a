"""What changed between two versions of a procedure definition, in plain sentences.

Cases stay pinned to the version they were opened on, so before installing a new version an
administrator (and later an auditor) needs to see exactly which rules moved: a threshold, a
deadline, a document, a state. Sentences use the YAML's own key names so each one points at
what to look for in the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from memberflow.workflow.assessment import AssessmentRules
from memberflow.workflow.definition import (
    LANGUAGES,
    Deadline,
    Definition,
    Derivation,
    GuardUse,
    InputSpec,
    Labels,
    State,
    Transition,
)
from memberflow.workflow.readmission import ReadmissionRules

Kind = Literal["added", "removed", "changed"]
K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class Change:
    """One difference: ``subject`` is what it belongs to (``state expelled``, ``transition expel``,
    ``definition``); ``text`` is the whole sentence."""

    kind: Kind
    subject: str
    text: str

    def __str__(self) -> str:
        return self.text


def diff(old: Definition, new: Definition, lang: str = "vi") -> list[Change]:
    """Every change from ``old`` to ``new``: definition, roles, documents, states, transitions.

    Deterministic: sections in that order, items in the order of ``old`` then the new ones.
    ``lang`` picks the label shown beside an added or removed item.
    """
    root = _Scope("definition", "")
    before, after = _paired(old.transitions, new.transitions)
    return [
        *root.changed("name", old.name, new.name),
        *_labels(root.within("title"), old.title, new.title),
        *root.changed("regulation", old.regulation, new.regulation),
        *root.changed("initial", old.initial, new.initial),
        *root.within("opened_by").members("role", old.opened_by, new.opened_by),
        *_keyed(root, "role", old.roles, new.roles, lambda v: _label(v, lang), _labels),
        *_keyed(root, "document", old.documents, new.documents, lambda v: _label(v, lang), _labels),
        *_keyed(root, "state", old.states, new.states, lambda s: _label(s.labels, lang), _state),
        *_keyed(root, "transition", before, after, _route, _transition,
                lambda key: _transition_name(key, before, after)),
        *_section(root, "assessment", old.assessment, new.assessment, _assessment),
        *_section(root, "readmission", old.readmission, new.readmission, _readmission),
    ]


@dataclass(frozen=True)
class _Scope:
    """Where a change sits: its subject and the words that open its sentence."""

    subject: str
    lead: str

    def within(self, name: str) -> _Scope:
        """A part of this scope; a top-level item (no lead yet) becomes the subject itself."""
        return _Scope(self.subject if self.lead else name, f"{self.lead}{name}: ")

    def item(self, kind: Kind, name: str, detail: str) -> Change:
        return Change(kind, self.subject if self.lead else name, f"{self.lead}{name}{detail} {kind}")

    def changed(self, what: str, before: Any, after: Any) -> list[Change]:
        """'what changed from A to B'; a value appearing or disappearing is 'added'/'removed'."""
        if before == after:
            return []
        if before is None or after is None:
            kind: Kind = "added" if before is None else "removed"
            return [self.item(kind, what, f" ({_show(after if before is None else before)})")]
        return [Change("changed", self.subject,
                       f"{self.lead}{what} changed from {_show(before)} to {_show(after)}")]

    def members(self, what: str, before: Sequence[str], after: Sequence[str]) -> list[Change]:
        """Names added to or removed from a list (roles, documents, source states)."""
        return [*(self.item("removed", f"{what} {x}", "") for x in before if x not in after),
                *(self.item("added", f"{what} {x}", "") for x in after if x not in before)]


def _keyed(scope: _Scope, what: str, old: Mapping[K, V], new: Mapping[K, V],
           detail: Callable[[V], str], compare: Callable[[_Scope, V, V], list[Change]],
           name_of: Callable[[K], str] = str) -> list[Change]:
    """Items matched by key: removed, added (with ``detail``), or compared part by part."""
    changes: list[Change] = []
    for key in dict.fromkeys([*old, *new]):
        name = name_of(key)
        if key not in new:
            changes.append(scope.item("removed", f"{what} {name}", detail(old[key])))
        elif key not in old:
            changes.append(scope.item("added", f"{what} {name}", detail(new[key])))
        else:
            changes.extend(compare(scope.within(f"{what} {name}"), old[key], new[key]))
    return changes


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return f"[{', '.join(_show(v) for v in value)}]"
    return str(value)


def _label(labels: Labels, lang: str) -> str:
    return f" ({labels.get(lang)})"


def _labels(scope: _Scope, old: Labels, new: Labels) -> list[Change]:
    return [change for lang in LANGUAGES for change in scope.changed(
        f"{lang} label", f'"{getattr(old, lang)}"', f'"{getattr(new, lang)}"')]


def _state(scope: _Scope, old: State, new: State) -> list[Change]:
    return [*scope.changed("stage", old.stage, new.stage),
            *scope.changed("terminal", old.terminal, new.terminal),
            *_labels(scope, old.labels, new.labels)]


# -- transitions ----------------------------------------------------------------------------------
TransitionKey = tuple[str, frozenset[str]]


def _paired(old: Sequence[Transition], new: Sequence[Transition]) -> tuple[dict[TransitionKey, Transition],
                                                                dict[TransitionKey, Transition]]:
    """Transitions keyed by trigger and sources; when a trigger's sources changed and it is the
    only unmatched one with that trigger on both sides, the new one takes the old key so the
    change reads as 'source state X removed' rather than a whole transition removed and added."""
    before = {(t.trigger, frozenset(t.sources)): t for t in old}
    after = {(t.trigger, frozenset(t.sources)): t for t in new}
    lost = [k for k in before if k not in after]
    gained = [k for k in after if k not in before]
    for key in lost:
        same = [k for k in gained if k[0] == key[0]]
        if len(same) == 1 and [k[0] for k in lost].count(key[0]) == 1:
            after[key] = after.pop(same[0])
            gained.remove(same[0])
    return before, after


def _transition_name(key: TransitionKey, before: Mapping[TransitionKey, Transition],
                     after: Mapping[TransitionKey, Transition]) -> str:
    """The trigger, with its source states when the trigger is defined more than once."""
    t = before.get(key) or after[key]
    repeated = any(sum(m.trigger == t.trigger for m in side.values()) > 1 for side in (before, after))
    return f"{t.trigger} from {', '.join(t.sources)}" if repeated else t.trigger


def _route(t: Transition) -> str:
    return f" ({', '.join(t.sources)} → {t.dest or 'stays'})"


def _transition(scope: _Scope, old: Transition, new: Transition) -> list[Change]:
    return [
        *_labels(scope, old.labels, new.labels),
        *scope.members("source state", old.sources, new.sources),
        *scope.changed("dest", old.dest or "stays", new.dest or "stays"),
        *scope.members("role", old.roles, new.roles),
        *scope.members("document", old.documents, new.documents),
        *_keyed(scope, "input", old.input_specs, new.input_specs, lambda i: f" ({i.type})", _input),
        *_guards(scope, old.guards, new.guards),
        *_keyed(scope, "record", old.records, new.records, lambda d: f" ({_derivation(d)})", _record),
        *scope.changed("deadline", _deadline(old.deadline), _deadline(new.deadline)),
        *scope.changed("deadline extension", _extension(old.deadline), _extension(new.deadline)),
        *scope.changed("extends_deadline", old.extends_deadline, new.extends_deadline),
        *scope.changed("automatic", old.automatic, new.automatic),
        *scope.members("separate_from move", old.separate_from, new.separate_from),
        *scope.members("clears fact", old.clears, new.clears),
    ]


def _input(scope: _Scope, old: InputSpec, new: InputSpec) -> list[Change]:
    return [*scope.changed("type", old.type, new.type),
            *scope.changed("required", old.required, new.required),
            *scope.changed("choices", list(old.choices), list(new.choices)),
            *_labels(scope, old.labels, new.labels)]


def _derivation(d: Derivation) -> str:
    return f"{d.source} + {_period(d.add_months, 'months')}" if d.add_months else d.source


def _record(scope: _Scope, old: Derivation, new: Derivation) -> list[Change]:
    return scope.changed("from", _derivation(old), _derivation(new))


def _period(amount: int, unit: str) -> str:
    words = unit.replace("_", " ")
    return f"{amount} {words[:-1] if amount == 1 else words}"


def _deadline(deadline: Deadline | None) -> str | None:
    return f"{_period(deadline.amount, deadline.unit)} after {deadline.start}" if deadline else None


def _extension(deadline: Deadline | None) -> str | None:
    days = deadline.extension_working_days if deadline else 0
    return _period(days, "working_days") if days else None


# -- guards ---------------------------------------------------------------------------------------
def _guards(scope: _Scope, old: Sequence[GuardUse], new: Sequence[GuardUse]) -> list[Change]:
    """Guards matched by name; several of one name are matched equal-first, then in order."""
    changes: list[Change] = []
    for name in dict.fromkeys(g.name for g in (*old, *new)):
        before, after = [g for g in old if g.name == name], [g for g in new if g.name == name]
        several = max(len(before), len(after)) > 1
        for index, (a, b) in enumerate(_match(before, after), start=1):
            label = f"guard {name} #{index}" if several else f"guard {name}"
            if a is None or b is None:
                changes.append(scope.item("added" if a is None else "removed", label,
                                          f" ({_params(b or a)})"))
            else:
                changes.extend(_guard_params(scope.within(label), a, b))
    return changes


def _match(old: list[GuardUse], new: list[GuardUse]) -> list[tuple[GuardUse | None, GuardUse | None]]:
    pairs: list[tuple[GuardUse | None, GuardUse | None]] = []
    rest = list(new)
    for guard in old:
        equal = next((g for g in rest if g == guard), None)
        if equal is not None:
            rest.remove(equal)
        pairs.append((guard, equal))
    unmatched = iter(rest)
    pairs = [(a, b if b is not None else next(unmatched, None)) for a, b in pairs]
    return pairs + [(None, b) for b in unmatched]


def _params(guard: GuardUse) -> str:
    return ", ".join(f"{key}: {_show(value)}" for key, value in guard.params.items())


def _guard_params(scope: _Scope, old: GuardUse, new: GuardUse) -> list[Change]:
    return [change for key in dict.fromkeys([*old.params, *new.params])
            for change in scope.changed(key, old.params.get(key), new.params.get(key))]


# -- assessment and readmission sections ----------------------------------------------------------
S = TypeVar("S")


def _section(root: _Scope, name: str, old: S | None, new: S | None,
             compare: Callable[[_Scope, S, S], list[Change]]) -> list[Change]:
    if old is None or new is None:
        return [] if old is new else [root.item("added" if old is None else "removed", name, "")]
    return compare(root.within(name), old, new)


def _fields(scope: _Scope, old: Any, new: Any, names: Sequence[str]) -> list[Change]:
    """Plain values compared field by field (lists shown whole)."""
    return [change for name in names
            for change in scope.changed(name, _plain(getattr(old, name)), _plain(getattr(new, name)))]


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _assessment(scope: _Scope, old: AssessmentRules, new: AssessmentRules) -> list[Change]:
    return [
        *scope.members("recorded_by role", old.recorded_by, new.recorded_by),
        *_keyed(scope, "rating", {r.name: r for r in old.ratings}, {r.name: r for r in new.ratings},
                lambda r: f" (from {r.min_score})",
                lambda sc, a, b: [*_fields(sc, a, b, ["min_score"]), *_labels(sc, a.labels, b.labels)]),
        *scope.changed("proposes", old.proposes, new.proposes),
        *_keyed(scope, "criterion", {c.name: c for c in old.criteria},
                {c.name: c for c in new.criteria}, lambda c: f" ({c.ground})",
                lambda sc, a, b: [*_fields(sc, a, b, ["ground", "stages", "rating", "years", "field",
                                                      "months"]), *_labels(sc, a.labels, b.labels)]),
    ]


def _readmission(scope: _Scope, old: ReadmissionRules, new: ReadmissionRules) -> list[Change]:
    return [
        *_labels(scope, old.labels, new.labels),
        *_fields(scope, old, new, ["ended_in", "ended_on", "ground_input", "wait_months",
                                   "once_only", "record_cleared_wait_months"]),
        *scope.members("document", old.documents, new.documents),
        *_keyed(scope, "exception", old.exceptions, new.exceptions, lambda _: "", _labels),
        *_keyed(scope, "barred category", {b.name: b for b in old.bars}, {b.name: b for b in new.bars},
                lambda _: "", lambda sc, a, b: [*_fields(sc, a, b, ["earlier_state", "earlier_ground",
                                                                    "unless"]),
                                                *_labels(sc, a.labels, b.labels)]),
    ]
