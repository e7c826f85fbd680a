"""Replaying a case from its first event under the definition version recorded on each event.

Every step must be a legal move from the replayed state, and its guards — re-run by the
same engine on the inputs and evidence stored with the event — must pass. This proves that
each recorded move was legal under the rules in force when it was made.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from memberflow.errors import MemberflowError
from memberflow.i18n import _
from memberflow.workflow.dates import local_time
from memberflow.workflow.definition import Definition
from memberflow.workflow.engine import CaseView, Engine, MoveRequest
from memberflow.workflow.readmission import Claim
from memberflow.workflow.readmission import opening_facts as readmission_facts
from memberflow.workflow.repinning import MIGRATION_KIND


@dataclass(slots=True)
class ReplayStep:
    seq: int
    business_date: date
    trigger: str
    from_state: str | None
    to_state: str
    actor: str
    role: str


@dataclass
class ReplayResult:
    case_id: int
    steps: list[ReplayStep] = field(default_factory=list)
    divergence: str | None = None
    state: str | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    definition: Definition | None = None

    @property
    def ok(self) -> bool:
        return self.divergence is None


def _business_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _recorded_day(recorded_at: str) -> date:
    return local_time(recorded_at).date()


class Replayer:
    def __init__(self, engine: Engine,
                 definition_by_sha: Callable[[str], Definition | None]) -> None:
        self.engine = engine
        self.definition_by_sha = definition_by_sha

    def replay(self, case_id: int, events: Iterable[Mapping[str, Any]]) -> ReplayResult:
        result = ReplayResult(case_id)
        for event in events:
            step = ReplayStep(event["seq"], _business_date(event["business_date"]), event["trigger"],
                              event["from_state"], event["to_state"], event["actor"], event["role"])
            problem = self._apply(result, event, step)
            if problem:
                result.divergence = _("seq {seq} ({trigger}): {problem}").format(
                                        seq=step.seq, trigger=step.trigger, problem=problem)
                break
            result.steps.append(step)
        return result

    def _apply(self, result: ReplayResult, event: Mapping[str, Any], step: ReplayStep) -> str | None:
        definition = self.definition_by_sha(event["definition_sha256"])
        if definition is None:
            return _("definition version {definition_sha256} is not stored").format(
                       definition_sha256=event['definition_sha256'][:12])
        if event["kind"] == "open":
            if result.state is not None:
                return _("a second opening event")
            if step.to_state != definition.initial:
                return _("opened in {to_state}, but {name} starts in {initial}").format(
                           to_state=step.to_state, name=definition.name, initial=definition.initial)
            result.state, result.definition = step.to_state, definition
            result.facts = self.engine.opening_facts(definition, step.business_date)
            return _readmission(result, definition, step, _payload(event["payload"]) or {})
        if event["kind"] not in ("move", MIGRATION_KIND):
            return _("unknown event kind {kind!r}").format(kind=event['kind'])
        if result.state is None or result.definition is None:
            return _("a move before the case was opened")
        if step.from_state != result.state:
            return _("recorded from {from_state}, but the replayed case is in {state}").format(
                       from_state=step.from_state, state=result.state)
        payload = _payload(event["payload"])
        if payload is None:
            return _("the stored payload is not a JSON object")
        if event["kind"] == MIGRATION_KIND:
            return _migrate(result, definition, step, payload)
        if definition.sha256 != result.definition.sha256:
            return (_("recorded under definition {sha256}, but the case is pinned to {sha2562}").format(
                        sha256=definition.sha256[:12], sha2562=result.definition.sha256[:12]))
        request = MoveRequest(step.trigger, frozenset({step.role}), step.business_date,
                              payload.get("inputs", {}), payload.get("documents", {}),
                              payload.get("evidence", {}), step.role, step.actor)
        try:
            move = self.engine.plan(definition, CaseView(result.state, result.facts), request,
                                    today=_recorded_day(event["recorded_at"]), with_due=False,
                                    replaying=True)
        except MemberflowError as refusal:
            return _("not legal under {name} ({sha256}): {refusal}").format(
                       name=definition.name, sha256=definition.sha256[:12], refusal=refusal)
        if move.to_state != step.to_state:
            return _("the rules lead to {to_state}, but {to_state2} was recorded").format(
                       to_state=move.to_state, to_state2=step.to_state)
        result.state, result.facts, result.definition = move.to_state, move.facts, definition
        return None


def _readmission(result: ReplayResult, definition: Definition, step: ReplayStep,
                 payload: dict[str, Any]) -> str | None:
    """A readmission's opening is checked again against its rules, on the stored evidence."""
    if "readmission" not in payload:
        return None
    earlier = payload.get("evidence", {}).get("earlier_membership")
    if definition.readmission is None or not isinstance(earlier, dict):
        return _("a readmission opening without readmission rules or evidence")
    documents = payload.get("documents") or {}
    claim = Claim.from_payload(payload["readmission"], documents)
    failures = definition.readmission.failures(earlier, claim, step.business_date, definition.states)
    if failures:
        return _("readmission not legal under {name}: {failures}").format(
                   name=definition.name, failures='; '.join(failures))
    result.facts.update(readmission_facts(earlier, documents))
    return None


def _migrate(result: ReplayResult, target: Definition, step: ReplayStep,
             payload: dict[str, Any]) -> str | None:
    """A migration re-pins the case: it must start from the version and state replayed so far
    and land where its recorded state map says, in a state the target version has."""
    assert result.definition is not None and result.state is not None
    if payload.get("from_sha256") != result.definition.sha256:
        return (_("migration from {payload}, but the case is pinned to {sha256}").format(
                    payload=str(payload.get('from_sha256'))[:12], sha256=result.definition.sha256[:12]))
    if payload.get("to_sha256") != target.sha256:
        return _("the migration's payload names another target version than its event")
    if (payload.get("state_map") or {}).get(result.state) != step.to_state:
        return _("the recorded state map does not send {state} to {to_state}").format(
                   state=result.state, to_state=step.to_state)
    if step.to_state not in target.states:
        return _("{name} ({sha256}) has no state {to_state}").format(
                   name=target.name, sha256=target.sha256[:12], to_state=step.to_state)
    result.state, result.definition = step.to_state, target
    for name in payload.get("cleared", ()):
        result.facts.pop(name, None)
    return None


def _payload(text: str) -> dict[str, Any] | None:
    try:
        payload = json.loads(text)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None
