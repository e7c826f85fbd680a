"""Yearly assessments and screening: who meets a removal criterion, and proposing it.

Each member is judged by the rules of the definition version their case is pinned to, so
a rule change applies to cases the way every other rule change does (migration).
Proposals are ordinary moves (``assessment.screening.proposes``), made one per case, each
in its own transaction, so one refusal does not stop the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memberflow.app.csv_files import RowResult, read_rows
from memberflow.errors import BadInput, MemberflowError, NotPermitted, StoppedPartWay, Unavailable
from memberflow.i18n import _
from memberflow.workflow.assessment import MONTH_FIELDS, AssessmentRules, Finding
from memberflow.workflow.dates import format_date
from memberflow.workflow.dates import today as business_today
from memberflow.workflow.definition import Definition
from memberflow.workflow.guards import is_pending

if TYPE_CHECKING:
    from memberflow.app.application import Application
    from memberflow.app.principal import Principal
    from memberflow.app.service import Service

MEMBER_STAGES = ("probation", "official")
FIRST_YEAR = 1930  # the Party's founding: no rating is older
ASSESSMENT_COLUMNS = ("person", "year", "score", "rating", *MONTH_FIELDS)
YEARS_LOOKED_BACK = 10


@dataclass(frozen=True)
class YearRecord:
    """One member's assessment for one year, as an officer gives it."""

    person_id: int
    year: int
    score: int
    rating: str | None = None  # None: the band the score reaches
    months: Mapping[str, int] | None = None


@dataclass(frozen=True)
class Listed:
    """A member screening lists, with every criterion met."""

    case_id: int
    person_id: int
    full_name: str
    organization: str
    state: str
    findings: tuple[Finding, ...]
    proposed_on: str | None  # a removal proposal already pending on the case


class Screening:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.store = service.store

    def record(self, actor: str, records: Sequence[YearRecord]) -> int:
        """Check every record first, then store them all in one transaction."""
        return self.store.assessments.record([self._checked(actor, r) for r in records], actor)

    def _checked(self, actor: str, record: YearRecord) -> dict[str, Any]:
        case, rules = self._member_case(record.person_id)
        roles = self.store.directory.roles_at(actor, case.organization_id)
        if not roles & set(rules.recorded_by):
            raise NotPermitted(_("{actor} holds no role that records assessments for person {person_id} "
                                 "(allowed: {recorded_by})").format(
                                   actor=actor, person_id=record.person_id,
                                   recorded_by=', '.join(rules.recorded_by)))
        return _row(record, rules)

    def record_file(self, actor: str, path: Path) -> tuple[int, int]:
        """A yearly CSV (one row per member): every row checked, then all or none stored.
        Returns (recorded, already recorded): a row equal to the newest assessment of its
        member and year is already recorded, so a file imported again adds nothing twice."""
        header, lines = read_rows(path, "person")
        unknown = sorted(set(header) - set(ASSESSMENT_COLUMNS))
        if unknown:
            raise BadInput(_("{path}:1: unknown column {unknown!r} (columns: {assessment_columns})").format(
                               path=path, unknown=unknown[0],
                               assessment_columns=', '.join(ASSESSMENT_COLUMNS)))
        rows: list[dict[str, Any]] = []
        seen: dict[tuple[int, int], int] = {}
        for line, values in lines:
            try:
                record = year_record(values)
                key = (record.person_id, record.year)
                if key in seen:
                    raise BadInput(_("person {key} in {key2} is also on row {seen}").format(
                                       key=key[0], key2=key[1], seen=seen[key]))
                seen[key] = line
                rows.append(self._checked(actor, record))
            except MemberflowError as bad:
                raise type(bad)(f"{path}:{line}: {bad}") from None
        return self.store.assessments.record_new(rows, actor)

    def screen(self, year: int, org_code: str | None = None,
               visible: list[int] | None = None) -> list[Listed]:
        """Members (probation or official) meeting a criterion of their definition in ``year``,
        of ``org_code``'s subtree, else of the ``visible`` organizations (None: all)."""
        check_year(year)
        organizations = self.store.directory.subtree_ids(org_code) if org_code else visible
        members = [(row, definition) for row, definition in self._members(organizations)]
        records = self.store.assessments.current(
            sorted({row["person_id"] for row, _ in members}), year - YEARS_LOOKED_BACK, year)
        listed = []
        for row, definition in members:
            rules = definition.assessment
            assert rules is not None
            stage = definition.states[row["state"]].stage
            found = rules.findings(year, stage, records.get(row["person_id"], {}))
            if found:
                facts = json.loads(row["facts"]) if isinstance(row["facts"], str) else row["facts"]
                listed.append(Listed(row["id"], row["person_id"], row["full_name"],
                                     row["organization"], row["state"], tuple(found),
                                     _pending_proposal(definition, facts)))
        return listed

    def propose(self, actor: str, listed: Sequence[Listed], business_date: date) -> Iterator[RowResult]:
        """Make the proposing move on each listed case not already proposed, one transaction
        each; each result is yielded once its move has committed.

        One case's trouble (refused, changed meanwhile) is that row's result; a database that
        cannot be written at all (busy past its timeout, full) stops the run with
        ``StoppedPartWay``, saying how many proposals were made before it. Running it again
        skips the proposals made (they are pending), so none is made twice.
        """
        moved = 0
        for index, member in enumerate(listed, 1):
            try:
                result = self._propose(actor, index, member, business_date)
            except Exception as cause:
                raise StoppedPartWay(
                    _("stopped at row {index} (case {case_id}): {reason}; {moved} proposal(s) made and "
                      "committed before it; run it again to continue (pending proposals are skipped)").format(
                        index=index, case_id=member.case_id, reason=StoppedPartWay.reason(cause),
                        moved=moved), cause) from cause
            moved += result.outcome == "moved"
            yield result

    def _propose(self, actor: str, index: int, member: Listed, on: date) -> RowResult:
        if member.proposed_on:
            pending = _("a proposal of {day} is pending").format(
                day=format_date(date.fromisoformat(member.proposed_on)))
            return RowResult(index, member.case_id, "skipped", pending)
        definition = self.service.definition(self.store.cases.load(member.case_id).definition_id)
        assert definition.assessment is not None
        first = member.findings[0]
        reason = "; ".join(f"{f.criterion.labels.vi}: {f.reason.vi}" for f in member.findings)
        try:
            recorded = self.service.advance(actor, member.case_id, definition.assessment.proposes, on,
                                            {"ground": first.criterion.ground, "reason": reason})
        except Unavailable:
            raise
        except MemberflowError as refused:  # one case's trouble stops no other
            return RowResult(index, member.case_id, "refused", str(refused))
        return RowResult(index, member.case_id, "moved", _("{trigger} ({ground}, event {seq})").format(
                                                             trigger=recorded.move.trigger,
                                                             ground=first.criterion.ground, seq=recorded.seq))

    def _members(self, organizations: Sequence[int] | None) -> Any:
        """Open cases in a member stage, each with its definition (which has assessment rules)."""
        states = set()
        for version in self.store.definitions.all():
            definition = self.service.definition(version["id"])
            if definition.assessment is not None:
                states |= {s.name for s in definition.states.values()
                           if s.stage in MEMBER_STAGES and not s.terminal}
        for row in self.store.assessments.cases_in(sorted(states), organizations):
            definition = self.service.definition(row["definition_id"])
            state = definition.states.get(row["state"])
            if definition.assessment is not None and state and state.stage in MEMBER_STAGES:
                yield row, definition

    def _member_case(self, person_id: int) -> tuple[Any, AssessmentRules]:
        for case in reversed(self.store.cases.of_person(person_id)):
            definition = self.service.definition(case.definition_id)
            state = definition.states[case.state]
            if definition.assessment and state.stage in MEMBER_STAGES and not state.terminal:
                return case, definition.assessment
        self.store.directory.person(person_id)  # NotFound for an unknown person
        raise BadInput(_("person {person_id} is not a member (no case in probation or official "
                         "membership): only members are assessed").format(person_id=person_id))


def _pending_proposal(definition: Definition, facts: Mapping[str, Any]) -> str | None:
    """The date of a proposal still open: the date the proposing move records, which the
    move closing it clears — or, in a version closing it with the superseded ``pending``
    guard, which stays recorded but is no later than the date that guard reads as closed."""
    rules = definition.assessment
    proposing = definition.any_transition(rules.proposes) if rules else None
    opened = next(iter(proposing.records), None) if proposing else None
    found = facts.get(opened) if opened else None
    closed = next((str(g.params.get("closed")) for t in definition.transitions for g in t.guards
                   if g.name == "pending" and g.params.get("opened") == opened), None)
    if closed is not None and not is_pending(facts, str(opened), closed):
        return None
    return str(found) if found is not None else None


def _row(record: YearRecord, rules: AssessmentRules) -> dict[str, Any]:
    problem = rules.rating_problem(record.score, record.rating)
    if problem:
        raise BadInput(_("person {person_id} in {year}: {problem}").format(
                           person_id=record.person_id, year=record.year, problem=problem))
    check_year(record.year)
    months = {name: (record.months or {}).get(name, 0) for name in MONTH_FIELDS}
    for name, value in months.items():
        if not 0 <= value <= 12:
            raise BadInput(_("{name} must be from 0 to 12 months, not {value}").format(
                               name=name, value=value))
    return {"person_id": record.person_id, "year": record.year, "score": record.score,
            "rating": record.rating or rules.band(record.score).name, **months}


def check_year(year: int) -> None:
    if not FIRST_YEAR <= year <= business_today().year:
        raise BadInput(_("year {year} is outside {first_year}–{year2}").format(
                           year=year, first_year=FIRST_YEAR, year2=business_today().year))


def year_record(values: Mapping[str, str]) -> YearRecord:
    """One CSV row; a wrong value is bad input naming its column."""
    numbers = {}
    for column in ("person", "year", "score", *MONTH_FIELDS):
        raw = (values.get(column) or "").strip() or ("0" if column in MONTH_FIELDS else "")
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
            raise BadInput(_("column {column}: {raw!r} is not a whole number").format(column=column, raw=raw))
        numbers[column] = int(raw)
    rating = (values.get("rating") or "").strip() or None
    return YearRecord(numbers["person"], numbers["year"], numbers["score"], rating,
                      {name: numbers[name] for name in MONTH_FIELDS})



def rating_labels(service: Service, person_id: int, lang: str) -> dict[str, str]:
    """Rating names to labels, from the definition of the person's latest case."""
    for case in reversed(service.store.cases.of_person(person_id)):
        rules = service.definition(case.definition_id).assessment
        if rules:
            return {r.name: r.labels.get(lang) for r in rules.ratings}
    return {}


class ScreeningOperations:
    """Assessments and screening for a principal: recording takes the roles the definition
    names (checked per member); reading takes a grant covering the member."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.access = app.access

    @property
    def _screening(self) -> Screening:
        return Screening(self.app.service)

    def record(self, principal: Principal, record: YearRecord) -> int:
        return self._screening.record(principal.username, [record])

    def record_file(self, principal: Principal, path: Path) -> tuple[int, int]:
        return self._screening.record_file(principal.username, path)

    def history(self, principal: Principal, person_id: int, lang: str) -> list[dict[str, Any]]:
        """Every assessment of a person the principal may see, corrections included."""
        self.app.people.show(principal, person_id)
        service = self.app.service
        labels = rating_labels(service, person_id, lang)
        return [{**row, "rating_label": labels.get(row["rating"], row["rating"])}
                for row in service.store.assessments.history(person_id)]

    def screen(self, principal: Principal, year: int, org_code: str | None) -> list[Listed]:
        visible = self.access.require_scope(principal, org_code)
        return self._screening.screen(year, org_code, visible)

    def propose(self, principal: Principal, listed: Sequence[Listed], on: date) -> Iterator[RowResult]:
        return self._screening.propose(principal.username, listed, on)

