"""The move engine: one cached ``transitions.Machine`` per definition version.

Cases are never attached to a machine (attaching costs kilobytes per case and grows
linearly); each move fires ``machine.events[trigger].trigger(token, ...)`` on a throwaway
token holding only the state. The engine decides and describes a move; storage commits it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from memberflow.errors import BadInput, MoveRefused, NotPermitted
from memberflow.i18n import _
from memberflow.workflow.dates import add_months, format_date
from memberflow.workflow.dates import today as business_today
from memberflow.workflow.deadlines import OpenDeadline, extension_fact, met_fact, open_deadlines
from memberflow.workflow.definition import Definition, Labels, Transition
from memberflow.workflow.guards import REGISTRY, GuardContext
from memberflow.workflow.inputs import parse_inputs
from memberflow.workflow.loader import STATE_ENTERED
from memberflow.workflow.possible import check_possible
from memberflow.workflow.workdays import WorkingCalendar, default_calendar
from transitions import Machine, MachineError

logging.getLogger("transitions").setLevel(logging.WARNING)

DOCUMENTS_FACT = "documents_on_file"
# The role ``memberflow tick`` acts in: only moves a definition marks automatic accept it.
SYSTEM_ROLE = "system"


@dataclass(slots=True)
class CaseView:
    """What the engine needs to know of a case: where it is and what has been recorded."""

    state: str
    facts: Mapping[str, Any]


@dataclass(slots=True)
class MoveRequest:
    trigger: str
    roles_held: frozenset[str]
    business_date: date
    inputs: Mapping[str, Any] = field(default_factory=dict)
    documents: Mapping[str, str] = field(default_factory=dict)
    evidence: Mapping[str, Any] = field(default_factory=dict)
    role: str | None = None
    actor: str | None = None  # needed only where the definition separates duties


@dataclass(slots=True)
class Move:
    """A decided move, ready to be committed with its audit event.

    Slotted rather than frozen: one is made per move and per replayed event, and a frozen
    dataclass pays for ``object.__setattr__`` on every field."""

    trigger: str
    from_state: str
    to_state: str
    role: str
    business_date: date
    inputs: dict[str, Any]
    evidence: Mapping[str, Any]
    documents: dict[str, str]
    facts: dict[str, Any]
    due: OpenDeadline | None
    to_labels: Labels  # the labels of the state the move leads to, for whoever shows it


@dataclass(slots=True)
class _Attempt:
    """Carried through the machine so its condition can report *every* failed rule."""

    transition: Transition
    context: GuardContext
    failures: list[str] = field(default_factory=list)


class _Token:
    __slots__ = ("state",)

    def __init__(self, state: str) -> None:
        self.state = state


def _rules_hold(event: Any) -> bool:
    attempt: _Attempt = event.kwargs["attempt"]
    attempt.failures = rule_failures(attempt.transition, attempt.context)
    return not attempt.failures


def rule_failures(transition: Transition, context: GuardContext) -> list[str]:
    """All broken rules of a transition: guards first, then documents not attached with it.

    A move's documents are the record of that step (the resolution, the decision, the new
    certificate), so one filed by an earlier move never stands in for them.
    """
    failures: list[str] = []
    for guard in transition.guards:
        failures.extend(REGISTRY[guard.name].check(context, guard.params))
    for code in transition.documents:
        if code not in context.attached:
            failures.append(_("document {code} must be attached with this move").format(code=code))
    return failures


def check_documents(definition: Definition, documents: Mapping[str, str]) -> None:
    """Every document code given must be one the definition knows."""
    if documents.keys() <= definition.documents.keys():
        return
    unknown = sorted(code for code in documents if code not in definition.documents)
    if unknown:
        raise BadInput(_("unknown document code {unknown!r}; {name} knows {documents}").format(
                           unknown=unknown[0], name=definition.name,
                           documents=', '.join(definition.documents)))


def made_by_fact(trigger: str) -> str:
    """The case fact naming who made a move another move is kept apart from."""
    return f"made_by.{trigger}"


def separation_failures(transition: Transition, facts: Mapping[str, Any],
                        actor: str | None) -> list[str]:
    """The user who proposed a step may not approve it (``separate_from`` in the definition)."""
    return [_("separation of duties: {actor} made {earlier} on this case, so another officer must make "
              "{trigger}").format(actor=actor, earlier=earlier, trigger=transition.trigger)
            for earlier in transition.separate_from
            if actor is not None and facts.get(made_by_fact(earlier)) == actor]


def _check_separation(transition: Transition, case: CaseView, actor: str | None) -> None:
    failures = separation_failures(transition, case.facts, actor)
    if failures:
        raise NotPermitted(failures[0])


def _check_extension(transition: Transition, case: CaseView) -> None:
    """A deadline may be extended once (the rules give one extension of bounded length)."""
    target = transition.extends_deadline
    granted = case.facts.get(extension_fact(target)) if target else None
    if granted:
        when = format_date(date.fromisoformat(granted)) if isinstance(granted, str) else "earlier"
        raise MoveRefused(_("move {trigger} is refused").format(trigger=transition.trigger),
                          [_("the deadline of {target} was already extended ({when}); it may be extended "
                             "only once").format(target=target, when=when)])


class Engine:
    def __init__(self, calendar: WorkingCalendar | None = None) -> None:
        self.calendar = calendar or default_calendar()
        self._machines: dict[str, Machine] = {}

    def machine(self, definition: Definition) -> Machine:
        machine = self._machines.get(definition.sha256)
        if machine is None:
            machine = Machine(
                model=None,
                states=[{"name": s.name, "final": s.terminal} for s in definition.states.values()],
                transitions=[
                    {"trigger": t.trigger, "source": source, "dest": t.dest,
                     "conditions": [_rules_hold]}
                    for t in definition.transitions for source in t.sources
                ],
                initial=definition.initial,
                auto_transitions=False,
                send_event=True,
                queued=False,
            )
            self._machines[definition.sha256] = machine
        return machine

    def opening_facts(self, definition: Definition, business_date: date) -> dict[str, Any]:
        return {STATE_ENTERED: business_date.isoformat(), "opened_on": business_date.isoformat()}

    def deadlines(self, definition: Definition, case: CaseView) -> list[OpenDeadline]:
        return open_deadlines(definition, case.state, case.facts, self.calendar)


    def plan(self, definition: Definition, case: CaseView, request: MoveRequest,
             today: date | None = None, with_due: bool = True, replaying: bool = False) -> Move:
        """Decide a move or raise: BadInput, NotPermitted or MoveRefused (with every reason).
        ``replaying``: a recorded move, judged again by its rules but not by today's idea of
        possible data (see ``possible``)."""
        transition, role = self.authorize(definition, case, request)
        inputs = parse_inputs(transition, request.inputs)
        self._check_date(case, request.business_date, today or business_today())
        check_documents(definition, request.documents)
        if not replaying:
            check_possible(transition, inputs, request.evidence)
        _check_extension(transition, case)
        context = self.context(case, request, inputs)
        attempt = _Attempt(transition, context)
        token = _Token(case.state)
        try:
            moved = self.machine(definition).events[request.trigger].trigger(token, attempt=attempt)
        except MachineError as exc:
            raise MoveRefused(str(exc)) from None
        if not moved:
            raise MoveRefused(_("move {trigger} is refused").format(
                                  trigger=request.trigger), attempt.failures)
        facts = self._next_facts(transition, case, request, inputs, token.state)
        if request.actor is not None and transition.trigger in definition.proposing_triggers:
            facts[made_by_fact(transition.trigger)] = request.actor
        for name in transition.clears:
            facts.pop(name, None)
        due = next(iter(open_deadlines(definition, token.state, facts, self.calendar)), None) \
            if with_due else None
        return Move(request.trigger, case.state, token.state, role, request.business_date,
                    inputs, request.evidence, dict(request.documents), facts, due,
                    definition.states[token.state].labels)

    def authorize(self, definition: Definition, case: CaseView,
                  request: MoveRequest) -> tuple[Transition, str]:
        """The move and the role it is made in, or the refusal saying who may not make it
        (BadInput for an unknown move, MoveRefused when not possible now, NotPermitted)."""
        transition = self._transition(definition, case.state, request.trigger)
        role = self._role(transition, request)
        _check_separation(transition, case, request.actor)
        return transition, role

    def context(self, case: CaseView, request: MoveRequest,
                inputs: Mapping[str, Any]) -> GuardContext:
        on_file = set(case.facts.get(DOCUMENTS_FACT, ())) | set(request.documents)
        return GuardContext(request.business_date, inputs, case.facts, request.evidence,
                            frozenset(on_file), frozenset(request.documents))

    def _transition(self, definition: Definition, state: str, trigger: str) -> Transition:
        transition = definition.transition(trigger, state)
        if transition is not None:
            return transition
        if definition.any_transition(trigger) is None:
            raise BadInput(_("{name} has no move {trigger!r}; moves: {names}").format(
                               name=definition.name, trigger=trigger, names=', '.join(definition.triggers())))
        label = definition.states[state].labels.en
        possible = ", ".join(t.trigger for t in definition.transitions_from(state)) or "none"
        raise MoveRefused(_("move {trigger} is not possible from state {state} ({label}); possible now: "
                            "{possible}").format(
                              trigger=trigger, state=state, label=label, possible=possible))

    @staticmethod
    def _role(transition: Transition, request: MoveRequest) -> str:
        if transition.automatic and request.roles_held == {SYSTEM_ROLE}:
            return SYSTEM_ROLE
        allowed = [r for r in transition.roles if r in request.roles_held]
        if request.role is not None:
            if request.role not in transition.roles:
                raise NotPermitted(_("role {role} may not fire {trigger} (allowed: {roles})").format(
                                       role=request.role, trigger=transition.trigger,
                                       roles=', '.join(transition.roles)))
            if request.role not in request.roles_held:
                raise NotPermitted(_("you hold no grant of role {role} for this case").format(
                                       role=request.role))
            return request.role
        if not allowed:
            raise NotPermitted(_("you hold no role allowed to fire {trigger} for this case (allowed: "
                                 "{roles})").format(
                                   trigger=transition.trigger, roles=', '.join(transition.roles)))
        return allowed[0]

    @staticmethod
    def _check_date(case: CaseView, business_date: date, today: date) -> None:
        if business_date > today:
            raise BadInput(_("business date {business_date} is in the future (today is {today})").format(
                               business_date=format_date(business_date), today=format_date(today)))
        entered = case.facts.get(STATE_ENTERED)
        if entered and business_date < date.fromisoformat(entered):
            raise BadInput(_("business date {business_date} is before the case entered its current state "
                             "on {day}").format(
                               business_date=format_date(business_date),
                               day=format_date(date.fromisoformat(entered))))

    @staticmethod
    def _next_facts(transition: Transition, case: CaseView, request: MoveRequest,
                    inputs: Mapping[str, Any], new_state: str) -> dict[str, Any]:
        facts = dict(case.facts)
        for fact, derivation in transition.records.items():
            if derivation.source == "business_date":
                base = request.business_date
            elif inputs.get(derivation.source) or facts.get(derivation.source):
                base = date.fromisoformat(inputs.get(derivation.source) or facts[derivation.source])
            else:
                continue
            facts[fact] = add_months(base, derivation.add_months).isoformat()
        if new_state != case.state:
            facts[STATE_ENTERED] = request.business_date.isoformat()
        if transition.deadline and case.facts.get(transition.deadline.start):
            # Remember which start this move answered: a new start restarts the clock.
            facts[met_fact(transition.trigger)] = case.facts[transition.deadline.start]
        if transition.extends_deadline:
            facts[extension_fact(transition.extends_deadline)] = request.business_date.isoformat()
        if request.documents:
            facts[DOCUMENTS_FACT] = sorted(set(facts.get(DOCUMENTS_FACT, ())) | set(request.documents))
        return facts
