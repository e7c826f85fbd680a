"""Officer-facing operations: read from the store, decide with the engine, commit to the store.

This is the only place that joins procedure rules and records; it issues no SQL itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memberflow.errors import AlreadyApplied, AlreadyMoved, BadInput, MoveRefused, NotFound, NotPermitted
from memberflow.i18n import _
from memberflow.workflow.dates import format_date, format_timestamp, local_time
from memberflow.workflow.dates import today as business_today
from memberflow.workflow.deadlines import OpenDeadline, open_deadlines
from memberflow.workflow.definition import Definition, Transition
from memberflow.workflow.directory import TICK_ACTOR
from memberflow.workflow.engine import (
    SYSTEM_ROLE,
    CaseView,
    Engine,
    Move,
    MoveRequest,
    check_documents,
    rule_failures,
    separation_failures,
)
from memberflow.workflow.guards import REGISTRY
from memberflow.workflow.holiday_data import changes_by_year, stored_holiday_data
from memberflow.workflow.inputs import parse_value
from memberflow.workflow.loader import STATE_ENTERED, load_definition, parse_definition
from memberflow.workflow.readmission import READMISSION_FACT, Claim, ReadmissionRules
from memberflow.workflow.readmission import opening_facts as readmission_facts
from memberflow.workflow.replay import Replayer, ReplayResult
from memberflow.workflow.workdays import WorkingCalendar, calendar_from

if TYPE_CHECKING:
    from memberflow.storage.calendar import CalendarState
    from memberflow.storage.cases import CaseRecord, StoredDue
    from memberflow.storage.store import Decide, MoveSnapshot, MoveWrite, Store


RACE_WINDOW = timedelta(minutes=2)


@dataclass(frozen=True)
class Availability:
    """One move possible from the case's state, and whether it could be made now."""

    transition: Transition
    role: str | None
    failures: list[str]
    needs_inputs: list[str]


@dataclass
class ReplaySummary:
    cases: int = 0
    events: int = 0
    divergent: list[tuple[int, str]] = field(default_factory=list)


def _replay_span(task: tuple[Any, ...]) -> ReplaySummary:
    from memberflow.storage.store import Store
    from memberflow.storage.verification import case_histories

    url, span = task
    store = Store(url)
    try:
        replayer = Service(store).replayer()
        summary = ReplaySummary()
        for case_id, history in case_histories(store.db, span=span):
            result = replayer.replay(case_id, history)
            summary.cases += 1
            summary.events += len(history)
            if not result.ok:
                summary.divergent.append((case_id, str(result.divergence)))
        return summary
    finally:
        store.close()


@dataclass
class TickReport:
    moved: dict[str, int] = field(default_factory=dict)
    waiting: int = 0  # cases in an automatic move's source state whose time has not come
    flagged: int = 0  # deadlines newly found missed
    recounted: int = 0  # stored deadlines not on the calendar in force, counted again


@dataclass(frozen=True)
class Recorded:
    case_id: int
    seq: int
    move: Move


@dataclass(frozen=True, slots=True)
class AdvanceRequest:
    """One move of a batch for ``Service.advance_many``: what ``advance`` takes for one case."""

    case_id: int
    trigger: str
    business_date: date
    inputs: Mapping[str, Any] = field(default_factory=dict)
    documents: Mapping[str, str] = field(default_factory=dict)
    role: str | None = None
    # A request that must never be applied twice (a bulk file's row): see ``workflow.bulk``.
    request_key: str | None = None


def _naming_case(case_id: int, decide: Decide) -> Decide:
    """Re-raise a refusal with the case id in front, keeping its type, so the caller of a
    batch knows which move stopped it."""
    def named(snapshot: MoveSnapshot) -> MoveWrite:
        try:
            return decide(snapshot)
        except MoveRefused as exc:
            raise MoveRefused(_("case {case_id}: {summary}").format(
                                  case_id=case_id, summary=exc.summary), exc.reasons) from exc
        except (AlreadyMoved, BadInput, NotFound, NotPermitted) as exc:
            raise type(exc)(_("case {case_id}: {exc}").format(case_id=case_id, exc=exc)) from exc

    return named


def stored_calendar(state: CalendarState) -> WorkingCalendar:
    """The calendar as stored: the holiday data snapshot in force and every override."""
    return calendar_from(stored_holiday_data(state.snapshot, state.days), state.overrides,
                         changes_by_year(state.snapshots))


def stored_due(deadlines: Sequence[OpenDeadline], calendar: WorkingCalendar) -> StoredDue | None:
    """What a case row keeps of its deadlines: the earliest, with the calendar version it
    was counted on. Moves, openings and calendar changes all store it through here."""
    from memberflow.storage.cases import StoredDue

    first = next(iter(deadlines), None)
    return StoredDue(first.due_on, first.trigger, calendar.version(first.due_on.year)) if first else None


class Service:
    def __init__(self, store: Store, engine: Engine | None = None) -> None:
        self.store = store
        self.engine = engine or Engine(stored_calendar(store.calendar.state()))
        self._definitions: dict[int, Definition] = {}
        self._by_sha: dict[str, Definition] = {}
        self.race_window = RACE_WINDOW

    # -- definitions ------------------------------------------------------------------
    def install_definitions(self, folder: Path) -> list[tuple[Definition, int, bool]]:
        """Validate and store every ``*.yaml`` in the folder; identical content is a no-op."""
        installed = []
        for path in sorted(folder.glob("*.yaml")):
            definition = load_definition(path)
            version_id, is_new = self.store.definitions.store(
                definition.name, definition.sha256, definition.source, path.name)
            installed.append((definition, version_id, is_new))
        return installed

    def definition_by_sha(self, sha256: str) -> Definition | None:
        """The stored definition version with this content hash, or None if none is stored."""
        cached = self._by_sha.get(sha256)
        if cached is None:
            from memberflow.errors import NotFound

            try:
                row = self.store.definitions.by_sha(sha256)
            except NotFound:
                return None
            cached = self.definition(row["id"])
            self._by_sha[sha256] = cached
        return cached

    def replayer(self) -> Replayer:
        return Replayer(self.engine, self.definition_by_sha)

    def case_as_of(self, case_id: int, as_of: date | None = None,
                   recorded_as_of: str | None = None) -> ReplayResult:
        """The case as it stood on a business date, or as the database knew it at a time."""
        from memberflow.storage.verification import case_histories

        self.store.cases.load(case_id)
        events: list[dict[str, Any]] = []
        for _recorded, history in case_histories(self.store.db, case_id, recorded_as_of):
            events = history
        if as_of is not None:
            events = list(_until_business_date(events, as_of))
        return self.replayer().replay(case_id, events)

    def replay_all(self, progress: Callable[[int], None] | None = None,
                   workers: int | None = None) -> ReplaySummary:
        """Replay every case, the id range split across worker processes (cases are independent)."""
        from memberflow.storage.verification import over_case_ranges

        summary = ReplaySummary()
        for part in over_case_ranges(self.store.db, _replay_span, (),
                                     workers or os.cpu_count() or 1):
            summary.cases += part.cases
            summary.events += part.events
            summary.divergent.extend(part.divergent)
            if progress:
                progress(part.events)
        return summary

    def definition(self, definition_id: int) -> Definition:
        cached = self._definitions.get(definition_id)
        if cached is None:
            row = self.store.definitions.by_id(definition_id)
            cached = parse_definition(row["source"], f"{row['name']}@{row['version']}")
            self._definitions[definition_id] = cached
        return cached

    # -- cases -----------------------------------------------------------------------
    def open_case(self, actor: str, person_id: int, org_code: str, definition_name: str,
                  business_date: date, readmission: Claim | None = None) -> int:
        """Open a case; with a ``readmission`` claim, a new membership after an earlier one
        ended, checked against the definition's readmission rules first."""
        from memberflow.storage.cases import EventDraft

        if business_date > business_today():
            raise BadInput(_("business date {business_date} is in the future").format(
                               business_date=format_date(business_date)))
        organization = self.store.directory.organization(org_code)
        person = self.store.directory.person(person_id)
        version = self.store.definitions.latest(definition_name)
        definition = self.definition(version["id"])
        roles = self.store.directory.roles_at(actor, organization["id"])
        role = next((r for r in definition.opened_by if r in roles), None)
        if role is None:
            raise NotPermitted(_("{actor} holds no role that may open a {name} case at {org_code} "
                                 "(allowed: {opened_by})").format(
                                   actor=actor, name=definition.name, org_code=org_code,
                                   opened_by=', '.join(definition.opened_by)))
        if business_date < person["birth_date"]:
            raise BadInput(_("business date {business_date} is before person {person_id} was born "
                             "({birth_date})").format(
                               business_date=format_date(business_date), person_id=person_id,
                               birth_date=format_date(person['birth_date'])))
        earlier: dict[str, Any] | None = None

        def refuse_if_open(existing: list[CaseRecord]) -> None:
            """Checked again on the person's cases as the locked transaction sees them, so a
            strike-off committed meanwhile cannot let a former member in by an ordinary case."""
            for other in existing:
                if not self.definition(other.definition_id).states[other.state].terminal:
                    raise MoveRefused(_("person {person_id} already has open case {id} ({state})").format(
                                          person_id=person_id, id=other.id, state=other.state))
            ended = self._ended_memberships(existing)
            if readmission is None:
                self._refuse_if_was_member(person_id, ended)
            elif earlier is not None and (not ended or ended[-1].id != earlier["case_id"]):
                raise AlreadyMoved(_("person {person_id}'s cases changed while the readmission was being "
                                     "checked; nothing written — run it again").format(person_id=person_id))

        facts = self.engine.opening_facts(definition, business_date)
        payload: dict[str, Any] = {"inputs": {}, "evidence": {"applicant": applicant_snapshot(person)},
                                   "documents": {}, "organization": org_code}
        if readmission is None:
            self._refuse_if_was_member(person_id,
                                       self._ended_memberships(self.store.cases.of_person(person_id)))
        else:
            earlier = self._check_readmission(definition, person_id, business_date, readmission)
            facts.update(readmission_facts(earlier, readmission.documents or {}))
            payload["evidence"]["earlier_membership"] = earlier
            payload.update(documents=dict(readmission.documents or {}),
                           readmission=readmission.as_payload())
        due = self._due(definition, CaseView(definition.initial, facts))
        draft = EventDraft("open", "open", actor, role, business_date, payload)
        return self.store.cases.open(person_id, organization["id"], version["id"],
                                     definition.sha256, definition.initial, facts, due, draft,
                                     refuse_if_open, readmission.documents if readmission else None)

    def _check_readmission(self, definition: Definition, person_id: int, on: date,
                           claim: Claim) -> dict[str, Any]:
        """The earlier membership as evidence, once every readmission rule holds for it."""
        rules = definition.readmission
        if rules is None:
            raise BadInput(_("{name} defines no readmission").format(name=definition.name))
        unknown = rules.unknown_names(claim)
        if unknown:
            raise BadInput(unknown)
        check_documents(definition, claim.documents or {})
        earlier = self._earlier_membership(person_id, rules)
        failures = rules.failures(earlier, claim, on, definition.states)
        if failures:
            raise MoveRefused(_("readmission of person {person_id} is refused").format(
                                  person_id=person_id), failures)
        return earlier

    def _ended_memberships(self, cases: Sequence[CaseRecord]) -> list[CaseRecord]:
        return [c for c in cases if (s := self.definition(c.definition_id).states[c.state]).terminal
                and s.stage == "removal"]

    @staticmethod
    def _refuse_if_was_member(person_id: int, ended: Sequence[CaseRecord]) -> None:
        """Someone whose membership ended comes back only by readmission, under its rules."""
        if ended:
            raise MoveRefused(_("person {person_id} was a member (case {id} ended in {state}); a new "
                                "membership is a readmission: use 'memberflow case readmit'").format(
                                  person_id=person_id, id=ended[-1].id, state=ended[-1].state))

    def _earlier_membership(self, person_id: int, rules: ReadmissionRules) -> dict[str, Any]:
        """How the person's latest membership ended (the date and ground the rules name), and
        their earlier readmissions."""
        cases = self.store.cases.of_person(person_id)
        ended = self._ended_memberships(cases)
        if not ended:
            raise MoveRefused(_("person {person_id} has no membership that ended; readmission follows only "
                                "a membership that ended (open an ordinary case)").format(
                                  person_id=person_id))
        last = ended[-1]
        payload = json.loads(self.store.cases.history(last.id)[-1]["payload"])
        return {"case_id": last.id, "ended_in": last.state,
                "ended_on": last.facts.get(rules.ended_on) or last.facts[STATE_ENTERED],
                "ground": payload.get("inputs", {}).get(rules.ground_input),
                "readmissions": [c.id for c in cases if READMISSION_FACT in c.facts]}

    def advance(self, actor: str, case_id: int, trigger: str, business_date: date,
                inputs: Mapping[str, Any] | None = None,
                documents: Mapping[str, str] | None = None, role: str | None = None,
                today: date | None = None, request_key: str | None = None) -> Recorded:
        """One move in its own transaction. With ``request_key``, a request the case's record
        already holds raises ``AlreadyApplied`` (naming its event) and writes nothing."""
        planned: list[Move] = []
        request = AdvanceRequest(case_id, trigger, business_date, inputs or {}, documents or {},
                                 role, request_key)
        _state, seq = self.store.move(case_id, actor, self._decider(actor, request, today, planned),
                                 request_key)
        return Recorded(case_id, seq, planned[0])

    def advance_many(self, actor: str, requests: Sequence[AdvanceRequest],
                     today: date | None = None) -> list[Recorded | AlreadyApplied]:
        """Many moves in one transaction, in order: one commit instead of one per move.

        Every move is planned by the same engine as ``advance``, on the case as the earlier
        moves of the batch left it (a case may appear more than once). If any is refused,
        nothing is written and the error, of the same type as ``advance`` would raise, starts
        with the case id. A keyed request the case's record already holds is not planned:
        its result is the event that applied it (``AlreadyApplied``).
        """
        from memberflow.storage.store import MoveOrder

        plans: list[list[Move]] = [[] for _ in requests]
        orders = [MoveOrder(request.case_id,
                            _naming_case(request.case_id,
                                         self._decider(actor, request, today, planned)),
                            request.request_key)
                  for request, planned in zip(requests, plans, strict=True)]
        written = self.store.move_many(orders, actor)
        return [done if isinstance(done, AlreadyApplied) else Recorded(request.case_id, done[1], planned[0])
                for request, done, planned in zip(requests, written, plans, strict=True)]

    def _decider(self, actor: str, asked: AdvanceRequest, today: date | None,
                 planned: list[Move]) -> Decide:
        """The decision for one move, made on what its transaction read; each planned move
        is appended to ``planned`` (the store returns only sequence numbers)."""
        from memberflow.storage.cases import EventDraft
        from memberflow.storage.store import MoveWrite

        def decide(snapshot: MoveSnapshot) -> MoveWrite:
            case = snapshot.case
            definition = self.definition(case.definition_id)
            system = actor == TICK_ACTOR and asked.role == SYSTEM_ROLE
            request = MoveRequest(
                trigger=asked.trigger, roles_held=frozenset({SYSTEM_ROLE}) if system else snapshot.roles,
                business_date=asked.business_date, inputs=dict(asked.inputs),
                documents=dict(asked.documents), role=asked.role, actor=actor,
            )
            view = CaseView(case.state, case.facts)
            if definition.transition(asked.trigger, case.state) is None and \
                    definition.any_transition(asked.trigger) is not None:
                self._refuse_if_just_moved(case.id, asked.trigger, actor)
            # Who may act is settled before the inputs are read for evidence: someone without
            # the role learns that, not what was wrong with what they typed.
            self.engine.authorize(definition, view, request)
            request.evidence = self._evidence(snapshot.person, case, definition, asked.trigger,
                                              asked.inputs)
            move = self.engine.plan(definition, view, request, today)
            planned.append(move)
            draft = EventDraft("move", asked.trigger, actor, move.role, asked.business_date, {
                "inputs": move.inputs, "evidence": move.evidence, "documents": move.documents})
            due = stored_due([move.due] if move.due else [], self.engine.calendar)
            return MoveWrite(move.to_state, move.facts, due, draft, move.documents)

        return decide

    def tick(self, as_of: date) -> TickReport:
        """Make every automatic move whose guards now hold, then flag missed deadlines.

        Running it twice changes nothing the second time: moved cases have left the source
        state, and a deadline is flagged once. Stored deadlines not counted on the current
        calendar (see ``CalendarAdministration.recount_stale``) are counted again first, so
        only deadlines that are missed on it are flagged."""
        if as_of > business_today():
            raise BadInput(_("--as-of {as_of} is in the future; tick acts on days that have come").format(
                               as_of=format_date(as_of)))
        from memberflow.app.calendar import CalendarAdministration

        report = TickReport()
        report.recounted = CalendarAdministration(self).recount_stale().counted
        for row in self.store.definitions.all():
            definition = self.definition(row["id"])
            for transition in (t for t in definition.transitions if t.automatic):
                for case_id in self.store.cases.ids_in(row["id"], list(transition.sources)):
                    request = AdvanceRequest(case_id, transition.trigger, as_of, role=SYSTEM_ROLE)
                    try:
                        self.store.move(case_id, TICK_ACTOR, self._decider(TICK_ACTOR, request, None, []))
                    except (MoveRefused, BadInput):  # not yet time, or entered after as_of
                        report.waiting += 1
                    else:
                        report.moved[transition.trigger] = report.moved.get(transition.trigger, 0) + 1
        report.flagged = self.store.cases.flag_overdue(as_of)
        return report

    def _refuse_if_just_moved(self, case_id: int, trigger: str, actor: str) -> None:
        """The same move sent twice at once: the second learns it lost a race.

        Its move is no longer possible because the first one's was recorded moments ago;
        saying so (exit 3) tells the officer to look again rather than that the rules refused
        them. The first may have been the officer's own (a command run again after a crash):
        then it says so, instead of blaming another officer. An older repeat of a move is an
        ordinary refusal.
        """
        last = self.store.cases.last_event(case_id)
        if not (last and last["trigger"] == trigger and
                datetime.now(UTC) - local_time(last["recorded_at"]) < self.race_window):
            return
        when = _("at {recorded_at} (event {seq}); nothing written").format(
                   recorded_at=format_timestamp(last['recorded_at']), seq=last['seq'])
        if last["actor"] == actor:
            raise AlreadyMoved(_("case {case_id}: you already made {trigger} {when}").format(
                                   case_id=case_id, trigger=trigger, when=when))
        raise AlreadyMoved(
            _("case {case_id} was just moved by another officer: {trigger} was recorded by {actor} {when} "
              "— show the case again before retrying").format(
                case_id=case_id, trigger=trigger, actor=last['actor'], when=when))

    def available(self, actor: str, case_id: int, business_date: date) -> list[Availability]:
        """Each move from the current state: who may make it, and which rules hold right now."""
        case = self.store.cases.load(case_id)
        definition = self.definition(case.definition_id)
        roles = self.store.directory.roles_at(actor, case.organization_id)
        person = self.store.directory.person(case.person_id)
        view = CaseView(case.state, case.facts)
        result = []
        for transition in definition.transitions_from(case.state):
            request = MoveRequest(transition.trigger, roles, business_date,
                                  evidence=self._evidence(person, case, definition,
                                                          transition.trigger, {}))
            context = self.engine.context(view, request, {})
            waiting = {spec.name for spec in transition.inputs}
            checkable = _without_guards_on(transition, waiting)
            role = next((r for r in transition.roles if r in roles), None)
            failures = separation_failures(transition, case.facts, actor) + \
                rule_failures(checkable, context)
            result.append(Availability(transition, role, failures, sorted(waiting)))
        return result

    def deadlines(self, case: CaseRecord) -> list[OpenDeadline]:
        return self.engine.deadlines(self.definition(case.definition_id),
                                     CaseView(case.state, case.facts))

    def _due(self, definition: Definition, view: CaseView) -> StoredDue | None:
        return stored_due(self.engine.deadlines(definition, view), self.engine.calendar)

    def due_on_calendar(self, definition_id: int, state: str, facts: Mapping[str, Any],
                        calendar: WorkingCalendar) -> StoredDue | None:
        """A case's stored deadline counted again on ``calendar`` (after a calendar change)."""
        return stored_due(open_deadlines(self.definition(definition_id), state, facts, calendar),
                          calendar)

    def _evidence(self, person: Mapping[str, Any], case: CaseRecord, definition: Definition,
                  trigger: str, raw_inputs: Mapping[str, Any]) -> dict[str, Any]:
        """Snapshot of the people a move's guards look at, stored with the audit event."""
        evidence: dict[str, Any] = {"applicant": applicant_snapshot(person)}
        transition = definition.transition(trigger, case.state)
        if transition is None:
            return evidence
        named = {s.name: s for s in transition.inputs if s.type in ("person", "introducers")}
        if not named or not set(named) & set(raw_inputs):
            return evidence
        parsed = {name: parse_value(spec, raw_inputs[name])
                  for name, spec in named.items() if name in raw_inputs}
        ids = {entry["person_id"] for value in parsed.values()
               for entry in (value if isinstance(value, list) else [{"person_id": value}])}
        evidence["people"] = self._member_snapshots(sorted(ids))
        return evidence

    def _member_snapshots(self, ids: list[int]) -> dict[str, Any]:
        found = self.store.directory.people_by_id(ids)
        snapshots = {}
        for person_id in ids:
            person = found.get(person_id)
            snapshot = {"person_id": person_id, "official": False,
                        "full_name": person["full_name"] if person else "unknown person"}
            for other in self.store.cases.of_person(person_id) if person else []:
                if self.definition(other.definition_id).states[other.state].stage == "official":
                    snapshot.update(official=True, official_since=other.facts.get("official_since"))
            snapshots[str(person_id)] = snapshot
        return snapshots


def _until_business_date(events: list[dict[str, Any]], as_of: date) -> Any:
    for event in events:
        day = event["business_date"]
        if (day if isinstance(day, date) else date.fromisoformat(str(day))) > as_of:
            return
        yield event


def _without_guards_on(transition: Transition, waiting: set[str]) -> Transition:
    """The transition minus guards that read inputs not given yet (they cannot be judged)."""
    def reads_waiting(guard: Any) -> bool:
        params = REGISTRY[guard.name].params
        return any(param.kind in ("input", "date_ref") and guard.params.get(key) in waiting
                   for key, param in params.items())

    return replace(transition, guards=tuple(g for g in transition.guards if not reads_waiting(g)),
                   documents=())


def applicant_snapshot(person: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "person_id": person["id"], "full_name": person["full_name"],
        "birth_date": person["birth_date"].isoformat(), "gender": person["gender"],
        "ethnicity": person["ethnicity"], "religion": person["religion"],
        "education": person["education"], "youth_union": bool(person["youth_union"]),
        "trade_union": bool(person["trade_union"]),
    }
