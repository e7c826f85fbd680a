"""Cases as officers and auditors ask for them: open, move, show, list, deadlines due.

Which role may make which move is the definition's rule, applied by the engine inside the
move's transaction; whether the principal may see a case at all is ``access``'s. Every read
here names the case's organization to ``access`` before anything of it is returned.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memberflow.errors import AuditFailed, BadInput, NotFound
from memberflow.i18n import _
from memberflow.workflow.dates import today as business_today
from memberflow.workflow.inputs import clean_text
from memberflow.workflow.presenting import event_row, state_row
from memberflow.workflow.readmission import Claim

if TYPE_CHECKING:
    from memberflow.app.application import Application
    from memberflow.app.csv_files import RowResult
    from memberflow.app.principal import Principal
    from memberflow.app.service import Availability, Recorded, TickReport
    from memberflow.storage.cases import CaseRecord
    from memberflow.workflow.deadlines import OpenDeadline

DOCUMENT_REFERENCE_LENGTH = 500


@dataclass(frozen=True)
class DeadlineView:
    """A running deadline, counted on the calendar the stored one is counted on."""

    move: str
    label: str
    due_on: date
    working_days_left: int
    overdue: bool
    calendar_version: str
    counted_from: str
    start: date
    extended: bool


@dataclass(frozen=True)
class CaseSummary:
    case: int
    person_id: int
    person_name: str
    organization: str
    definition: str
    definition_sha256: str
    state: str
    label: str
    stage: str
    opened_on: date
    events: int
    deadlines: list[DeadlineView]
    facts: dict[str, Any]


@dataclass(frozen=True)
class CasePast:
    """A case rebuilt from its events as of a business date or a recorded time."""

    case: int
    as_of: date | None
    recorded_as_of: str | None
    state: str
    label: str
    stage: str
    events: int
    deadlines: list[DeadlineView]
    facts: dict[str, Any]


@dataclass(frozen=True)
class AvailableMove:
    move: str
    label: str
    status: str  # ready | blocked | not your role
    roles: tuple[str, ...]
    needs_inputs: list[str]
    documents: tuple[str, ...]
    blocked_by: list[str]


@dataclass(frozen=True)
class DueRow:
    organization: str
    case: int
    person: str
    state: str
    label: str
    move: str
    due_on: date
    working_days_left: int
    overdue: bool
    calendar_version: str | None
    stale: bool


@dataclass(frozen=True)
class DueGroup:
    organization: str
    name: str
    rows: list[DueRow]

    @property
    def overdue(self) -> int:
        return sum(r.overdue for r in self.rows)


@dataclass(frozen=True)
class DueReport:
    rows: list[DueRow]
    groups: list[DueGroup] = field(default_factory=list)

    @property
    def stale(self) -> int:
        return sum(r.stale for r in self.rows)


@dataclass(frozen=True)
class Readmission:
    """What a readmission states besides the case: documents and the dossier's findings."""

    documents: Mapping[str, str]
    declared: frozenset[str] = frozenset()
    exceptions: frozenset[str] = frozenset()
    record_cleared_on: date | None = None


def filed(documents: Mapping[str, str]) -> dict[str, str]:
    """Documents as an officer attaches them (code → reference; the code when none given)."""
    return {code: clean_text(ref or code, _("document {code}").format(code=code),
                             DOCUMENT_REFERENCE_LENGTH) for code, ref in documents.items()}


class Cases:
    def __init__(self, app: Application) -> None:
        self.app = app
        self.access = app.access

    @property
    def service(self) -> Any:
        return self.app.service

    # -- changes ------------------------------------------------------------------------------
    def open(self, principal: Principal, person_id: int, org_code: str, definition_name: str,
             on: date, readmission: Readmission | None = None) -> int:
        """A new case at the person's branch; with ``readmission``, a new membership after an
        earlier one ended, under the definition's readmission rules."""
        claim = None
        if readmission is not None:
            claim = Claim(readmission.declared, readmission.exceptions,
                          readmission.record_cleared_on, filed(readmission.documents))
        return self.service.open_case(principal.username, person_id, org_code, definition_name,
                                      on, claim)

    def readmitted_after(self, principal: Principal, case_id: int) -> int:
        """The earlier case a readmission case follows."""
        return self._readable(principal, case_id).facts["readmission_of"]

    def advance(self, principal: Principal, case_id: int, trigger: str, on: date,
                inputs: Mapping[str, str], documents: Mapping[str, str],
                role: str | None) -> Recorded:
        return self.service.advance(principal.username, case_id, trigger, on, inputs,
                                    filed(documents), role)

    def advance_file(self, principal: Principal, trigger: str, path: Path, given: date | None,
                     all_or_nothing: bool) -> tuple[int, Iterator[RowResult]]:
        """Every row of a CSV file, each reported once its transaction has committed."""
        from memberflow.app.csv_files import advance_rows

        return advance_rows(self.service, principal.username, trigger, path, given, all_or_nothing)

    def tick(self, principal: Principal, as_of: date) -> TickReport:
        """The moves time makes (recorded as the scheduler's), run by any officer or
        administrator: they are the same whoever starts them, and a second run does nothing."""
        self.access.require_officer(principal)
        return self.service.tick(as_of)

    # -- reads --------------------------------------------------------------------------------
    def _readable(self, principal: Principal, case_id: int) -> CaseRecord:
        record = self.app.store.cases.load(case_id)
        self.access.require_reader_at(principal, record.organization_id, record.organization_code,
                                      _("case {case}").format(case=case_id))
        return record

    def show(self, principal: Principal, case_id: int, lang: str) -> CaseSummary:
        record = self._readable(principal, case_id)
        service = self.service
        definition = service.definition(record.definition_id)
        person = self.app.store.directory.person(record.person_id)
        state = state_row(definition, record.state, lang)
        return CaseSummary(
            record.id, person["id"], person["full_name"], record.organization_code,
            definition.name, record.definition_sha256, record.state, state["label"],
            state["stage"], record.opened_on, record.seq,
            self._deadline_views(service.deadlines(record), business_today(), lang), record.facts)

    def show_past(self, principal: Principal, case_id: int, as_of: date | None,
                  recorded_as_of: str | None, lang: str) -> CasePast:
        """The case replayed from its events up to a business date or a recorded UTC time."""
        from memberflow.workflow.engine import CaseView

        record = self._readable(principal, case_id)
        known = utc_timestamp(recorded_as_of) if recorded_as_of else None
        past = self.service.case_as_of(case_id, as_of, known)
        if past.state is None or past.definition is None:
            raise NotFound(self._not_yet(record, known))
        if not past.ok:
            raise AuditFailed(_("case {case} cannot be replayed: {why}")
                              .format(case=case_id, why=past.divergence))
        state = past.definition.states[past.state]
        deadlines = self.service.engine.deadlines(past.definition, CaseView(past.state, past.facts))
        return CasePast(case_id, as_of, known, past.state, state.labels.get(lang), state.stage,
                        len(past.steps), self._deadline_views(deadlines, as_of or business_today(),
                                                              lang), past.facts)

    def _not_yet(self, record: CaseRecord, known: str | None) -> str:
        """A case asked for before it existed: when it begins, so the officer can ask again."""
        from memberflow.workflow.dates import format_date

        if known is not None:
            first = self.app.store.cases.history(record.id)[0]["recorded_at"]
            return _("case {case} was not recorded yet at {time}; its first event was recorded "
                     "at {first} (UTC)").format(case=record.id, time=known, first=first)
        return _("case {case} was not opened yet on that day; it was opened on {day}").format(
            case=record.id, day=format_date(record.opened_on))

    def _deadline_views(self, deadlines: Sequence[OpenDeadline], on: date,
                        lang: str) -> list[DeadlineView]:
        calendar = self.service.engine.calendar
        views = []
        for d in deadlines:
            left = calendar.working_days_between(on, d.due_on)
            views.append(DeadlineView(d.trigger, d.labels.get(lang), d.due_on, left, left < 0,
                                      calendar.version(d.due_on.year), d.counted_from, d.start,
                                      d.extended))
        return views

    def listing(self, principal: Principal, org_code: str | None, states: Sequence[str],
                limit: int, lang: str) -> list[dict[str, Any]]:
        """Cases the principal sees (an organization's subtree, or all they see), by id."""
        service, store = self.service, self.app.store
        known = {name for row in store.definitions.all()
                 for name in service.definition(row["id"]).states}
        unknown = sorted(set(states) - known)
        if unknown:
            raise BadInput(_("unknown state {state!r}; states: {states}")
                           .format(state=unknown[0], states=", ".join(sorted(known))))
        scope = self.access.require_scope(principal, org_code)
        rows = list(store.cases.listing(scope, list(states) or None, limit=limit))
        for row in rows:
            row["label"] = self._state_label(row["definition_sha256"], row["state"], lang)
        return rows

    def _state_label(self, sha256: str, state: str, lang: str) -> str:
        definition = self.service.definition_by_sha(sha256)
        found = definition.states.get(state) if definition else None
        return found.labels.get(lang) if found else state

    def history(self, principal: Principal, case_id: int, lang: str,
                full: bool = False) -> list[dict[str, Any]]:
        """Every audit event of the case; ``full`` adds evidence, definition and hashes (a
        person's sensitive fields in the evidence only for those who may see them)."""
        record = self._readable(principal, case_id)
        definition = self.service.definition(record.definition_id)
        rows = [event_row(e, definition, lang, full) for e in self.app.store.cases.history(case_id)]
        if full:
            shown = self.app.people.sensitive_shown(principal, record.organization_id)
            for row in rows:
                self.app.people.conceal_evidence(row["evidence"], shown)
        return rows

    def available(self, principal: Principal, case_id: int, on: date,
                  lang: str) -> list[AvailableMove]:
        """Each move possible now: may the principal make it, and which rules hold or block it."""
        self._readable(principal, case_id)
        return [_available(item, lang)
                for item in self.service.available(principal.username, case_id, on)]

    def due(self, principal: Principal, org_code: str | None, within: int, overdue: bool,
            as_of: date, lang: str) -> DueReport:
        """Deadlines due within ``within`` working days (or missed), fewest days left first,
        grouped by organization, each with the calendar version it was counted on."""
        calendar = self.service.engine.calendar
        scope = self.access.require_scope(principal, org_code)
        until = as_of - timedelta(days=1) if overdue else calendar.add_working_days(as_of, within)
        rows = []
        for row in self.app.store.cases.listing(scope, due_until=until, limit=100_000):
            left = calendar.working_days_between(as_of, row["due_on"])
            rows.append(DueRow(
                row["organization"], row["id"], row["full_name"], row["state"],
                self._state_label(row["definition_sha256"], row["state"], lang), row["due_move"],
                row["due_on"], left, left < 0, row["due_calendar"],
                row["due_calendar"] != calendar.version(row["due_on"].year)))
        rows.sort(key=lambda r: (r.organization, r.working_days_left, r.case))
        return DueReport(rows, self._grouped(rows))

    def _grouped(self, rows: Sequence[DueRow]) -> list[DueGroup]:
        grouped: dict[str, list[DueRow]] = {}
        for row in rows:
            grouped.setdefault(row.organization, []).append(row)
        names = {code: self.app.store.directory.organization(code)["name"] for code in grouped}
        return [DueGroup(code, names[code], group) for code, group in grouped.items()]


def _available(item: Availability, lang: str) -> AvailableMove:
    t = item.transition
    status = "ready" if not item.failures else "blocked"
    if item.role is None:
        status = "not your role"
    return AvailableMove(t.trigger, t.labels.get(lang), status, t.roles, item.needs_inputs,
                         t.documents, item.failures)


def utc_timestamp(text: str) -> str:
    """A recorded-at time as typed (UTC unless it says otherwise), as stored."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    except (ValueError, OverflowError):
        raise BadInput(_("--recorded-as-of {text!r} is not a time; use yyyy-mm-ddTHH:MM")
                       .format(text=text)) from None
