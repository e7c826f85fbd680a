"""The in-memory form of a procedure definition (built and validated by ``loader``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memberflow.workflow.assessment import AssessmentRules
    from memberflow.workflow.personal_data import PersonalData
    from memberflow.workflow.readmission import ReadmissionRules

STAGES = ("application", "probation", "official", "removal")
LANGUAGES = ("vi", "en")


@dataclass(frozen=True)
class Labels:
    vi: str
    en: str

    def get(self, lang: str = "vi") -> str:
        return self.en if lang == "en" else self.vi


@dataclass(frozen=True)
class State:
    name: str
    labels: Labels
    stage: str
    terminal: bool
    line: int


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: str
    labels: Labels
    required: bool = True
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class GuardUse:
    name: str
    params: dict[str, Any]
    line: int
    param_lines: dict[str, int] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Deadline:
    """A move must be made within a period counted from a recorded date."""

    amount: int
    unit: str  # working_days | months
    start: str  # a fact name, or "state_entered_on"
    extension_working_days: int = 0


@dataclass(frozen=True)
class Derivation:
    """A fact recorded by a move: the business date, or another date plus whole months."""

    source: str  # "business_date" or a fact/input name
    add_months: int = 0


@dataclass(frozen=True)
class Transition:
    trigger: str
    labels: Labels
    sources: tuple[str, ...]
    dest: str | None  # None: the case stays in its state (e.g. renewing a certificate)
    roles: tuple[str, ...]
    guards: tuple[GuardUse, ...] = ()
    documents: tuple[str, ...] = ()
    inputs: tuple[InputSpec, ...] = ()
    records: dict[str, Derivation] = field(default_factory=dict)
    deadline: Deadline | None = None
    extends_deadline: str | None = None
    automatic: bool = False  # made by ``memberflow tick`` when its guards hold
    # Separation of duties: whoever made one of these moves on the case may not make this one.
    separate_from: tuple[str, ...] = ()
    # Facts the move removes: closing what another move opened (a proposal's date, who made it).
    clears: tuple[str, ...] = ()
    # Date inputs recorded only because another move reads them: how definitions written before
    # ``records`` were read (the engine then recorded every input). Also in ``records``.
    implicit_records: tuple[str, ...] = ()
    line: int = 0
    key_lines: dict[str, int] = field(default_factory=dict, compare=False)

    @cached_property
    def input_specs(self) -> dict[str, InputSpec]:
        """Inputs by name, built once: every move and every replayed event looks them up."""
        return {spec.name: spec for spec in self.inputs}

    def line_of(self, key: str) -> int:
        """Line of a key such as ``deadline.from`` or ``records.probation_end``, for problems."""
        return self.key_lines.get(key, self.line)

    def destination(self, source: str) -> str:
        return self.dest or source


@dataclass(frozen=True)
class Definition:
    name: str
    title: Labels
    regulation: str
    initial: str
    opened_by: tuple[str, ...]
    roles: dict[str, Labels]
    documents: dict[str, Labels]
    states: dict[str, State]
    transitions: tuple[Transition, ...]
    sha256: str
    source: str
    file: str
    assessment: AssessmentRules | None = None  # ratings and screening, when defined
    readmission: ReadmissionRules | None = None
    personal_data: PersonalData | None = None  # the loader always sets it (a default if absent)
    # Caches, not fields: ``dataclasses.replace`` must give a copy its own.
    _reachable: dict[str, frozenset[str]] = field(default_factory=dict, compare=False, repr=False,
                                                  init=False)
    _index: dict[tuple[str, str], Transition] = field(default_factory=dict, compare=False,
                                                      repr=False, init=False)

    def transitions_from(self, state: str) -> list[Transition]:
        return [t for t in self.transitions if state in t.sources]

    def transition(self, trigger: str, state: str) -> Transition | None:
        """The move ``trigger`` from ``state`` (indexed once: this is on every move's path)."""
        if not self._index:
            self._index.update({(t.trigger, source): t for t in reversed(self.transitions)
                                for source in t.sources})
        return self._index.get((trigger, state))

    @cached_property
    def proposing_triggers(self) -> frozenset[str]:
        """Moves another move is kept apart from: who made them is recorded on the case."""
        return frozenset(t for transition in self.transitions for t in transition.separate_from)

    def triggers(self) -> list[str]:
        return list(dict.fromkeys(t.trigger for t in self.transitions))

    def any_transition(self, trigger: str) -> Transition | None:
        return next((t for t in self.transitions if t.trigger == trigger), None)

    def reachable_triggers(self, state: str) -> frozenset[str]:
        """Moves that can still happen from ``state`` (directly or later on)."""
        cache = self._reachable
        if state not in cache:
            seen, todo, triggers = {state}, [state], set()
            while todo:
                for t in self.transitions_from(todo.pop()):
                    triggers.add(t.trigger)
                    nxt = t.dest
                    if nxt and nxt not in seen:
                        seen.add(nxt)
                        todo.append(nxt)
            cache[state] = frozenset(triggers)
        return cache[state]
