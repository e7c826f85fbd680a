"""Read-only queries behind ``memberflow report``: aggregated in SQL, streamed to the caller.

Storage knows the tables, not the rules: which triggers count as an admission, which moves
form the main path and which events start a deadline are decided in ``workflow.reports``
and passed in. Every query groups in the database, so what comes back is one row per
group (organization × state, move × pair of dates, ...), never one row per case or event;
results that grow with the record are streamed (a server-side cursor on PostgreSQL), so
memory stays constant. Rows are named tuples.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from memberflow.storage.database import Database
from memberflow.storage.schema import audit_events, cases, definition_versions, organizations, people
from sqlalchemy import Connection, Row, and_, bindparam, case, exists, func, literal, or_, select

# What ``admissions --by`` may group on: the case's organization and the person's data.
DIMENSIONS: dict[str, tuple[Any, ...]] = {
    "org": (organizations.c.code.label("organization"),
            organizations.c.name.label("organization_name")),
    "gender": (people.c.gender,),
    "ethnicity": (people.c.ethnicity,),
    "religion": (people.c.religion,),
    "youth_union": (people.c.youth_union,),
}
STREAM = 2000


def _stream(conn: Connection, query: Any) -> Iterator[Row[Any]]:
    """Rows as named tuples, fetched in batches (a server-side cursor on PostgreSQL): for
    results that grow with the record (one row per pair of dates)."""
    yield from conn.execution_options(yield_per=STREAM).execute(query)


def _groups(conn: Connection, query: Any) -> Iterator[Row[Any]]:
    """Rows as named tuples, fetched at once: for results bounded by the dimensions grouped
    on (organizations × states), not by the number of cases. (PostgreSQL plans a server-side
    cursor for its first rows and without parallel workers: twice as slow here.)"""
    yield from conn.execute(query).all()


def _in_organizations(organization_ids: Sequence[int] | None) -> Any:
    """Cases of these organizations; the ids are rendered inline (a subtree may hold more
    organizations than SQLite accepts bound parameters)."""
    if organization_ids is None:
        return None
    ids = bindparam("organization_ids", list(organization_ids), expanding=True, literal_execute=True)
    return cases.c.organization_id.in_(ids)


def _between(column: Any, start: date | None, end: date | None) -> list[Any]:
    clauses = []
    if start is not None:
        clauses.append(column >= start)
    if end is not None:
        clauses.append(column < end)
    return clauses


class ReportQueries:
    def __init__(self, db: Database) -> None:
        self.db = db

    def admissions(self, triggers: Sequence[str], move_kind: str, start: date, end: date,
                   organization_ids: Sequence[int] | None, by: Sequence[str], *,
                   women: str, majority_ethnicity: str,
                   no_religion: Sequence[str]) -> Iterator[Row[Any]]:
        """Move events of ``triggers`` with a business date in [start, end), counted per group
        of ``by`` (keys of ``DIMENSIONS``), with how many of them are women, of another
        ethnicity than the majority, religious, and Youth Union members."""
        keys = [column for key in by for column in DIMENSIONS[key]]
        counted = [
            func.count().label("admitted"),
            func.sum(case((people.c.gender == women, 1), else_=0)).label("women"),
            func.sum(case((people.c.ethnicity != majority_ethnicity, 1), else_=0))
            .label("ethnic_minority"),
            func.sum(case((people.c.religion.in_(list(no_religion)), 0), else_=1)).label("religious"),
            func.sum(case((people.c.youth_union.is_(True), 1), else_=0)).label("youth_union_members"),
        ]
        # The moves come from the (trigger, business_date, kind) index alone, sorted by case
        # so the case and person lookups walk their tables in order (3x faster on a national
        # record than in date order); organizations are joined only when grouped on.
        moves = _materialized(
            select(audit_events.c.case_id)
            .where(audit_events.c.kind == move_kind, audit_events.c.trigger.in_(list(triggers)),
                   *_between(audit_events.c.business_date, start, end))
            .order_by(audit_events.c.case_id))
        source = (moves.join(cases, cases.c.id == moves.c.case_id)
                  .join(people, people.c.id == cases.c.person_id))
        if "org" in by:
            source = source.join(organizations, organizations.c.id == cases.c.organization_id)
        query = select(*keys, *counted).select_from(source)
        scope = _in_organizations(organization_ids)
        if scope is not None:
            query = query.where(scope)
        if keys:
            query = query.group_by(*keys).order_by(*keys)
        with self.db.connect(unbounded=True) as conn:
            yield from _groups(conn, query)

    def states_on(self, day: date,
                  organization_ids: Sequence[int] | None) -> Iterator[Row[Any]]:
        """Cases per organization and state on a business date: a case's state is the
        ``to_state`` (under that event's definition version) of its last event dated on or
        before ``day``; cases with no such event were not opened yet and are not counted.

        Two grouped queries whose rows the caller adds up: cases with no event after
        ``day`` are in their current state (the case row, no scan of their events) — for a
        recent date that is nearly all of them; only the others are found from their events.
        The same (organization, version, state) may therefore come back twice.
        """
        later = (select(audit_events.c.case_id)
                 .where(audit_events.c.case_id == cases.c.id, audit_events.c.business_date > day))
        scope = _in_organizations(organization_ids)
        unchanged = (select(organizations.c.code.label("organization"),
                            organizations.c.name.label("organization_name"),
                            definition_versions.c.sha256.label("definition_sha256"),
                            cases.c.state, func.count().label("cases"))
                     .select_from(cases.join(organizations,
                                             organizations.c.id == cases.c.organization_id)
                                  .join(definition_versions,
                                        definition_versions.c.id == cases.c.definition_id))
                     .where(~exists(later))
                     .group_by(organizations.c.code, organizations.c.name,
                               definition_versions.c.sha256, cases.c.state))
        changed = (select(audit_events.c.case_id).where(audit_events.c.business_date > day)
                   .distinct())
        if scope is not None:
            unchanged = unchanged.where(scope)
            changed = changed.where(audit_events.c.case_id.in_(select(cases.c.id).where(scope)))
        last = (select(audit_events.c.case_id, func.max(audit_events.c.seq).label("seq"))
                .where(audit_events.c.business_date <= day,
                       audit_events.c.case_id.in_(changed))
                .group_by(audit_events.c.case_id).subquery("last"))
        event = audit_events.alias("event")
        replayed = (select(organizations.c.code.label("organization"),
                           organizations.c.name.label("organization_name"),
                           event.c.definition_sha256, event.c.to_state.label("state"),
                           func.count().label("cases"))
                    .select_from(last.join(event, and_(event.c.case_id == last.c.case_id,
                                                       event.c.seq == last.c.seq))
                                 .join(cases, cases.c.id == last.c.case_id)
                                 .join(organizations, organizations.c.id == cases.c.organization_id))
                    .group_by(organizations.c.code, organizations.c.name, event.c.definition_sha256,
                              event.c.to_state))
        with self.db.connect(unbounded=True) as conn:
            yield from _groups(conn, unchanged)
            yield from _groups(conn, replayed)

    def step_durations(self, triggers: Sequence[str], move_kind: str,
                       state_change_kinds: Sequence[str], start: date | None, end: date | None,
                       organization_ids: Sequence[int] | None) -> Iterator[Row[Any]]:
        """Moves of ``triggers`` dated in [start, end), counted per (trigger, date the case
        entered the move's source state, date of the move).

        The source state was entered by the case's previous *state change*: an event of
        ``state_change_kinds`` whose to_state differs from its from_state (the opening
        counts; moves that stay in their state and migrations do not). It is looked up per
        move on the (case, seq) key, so a period costs what its moves cost.
        """
        move, earlier = audit_events.alias("move"), audit_events.alias("earlier")
        entered_on = _last_before(move, earlier, _state_change(earlier, state_change_kinds))
        moves = (select(move.c.trigger, entered_on.label("entered_on"),
                        move.c.business_date.label("moved_on"))
                 .where(move.c.kind == move_kind, move.c.trigger.in_(list(triggers)),
                        *_between(move.c.business_date, start, end)))
        found = _materialized(_scoped(moves, move, organization_ids))
        query = (select(found.c.trigger, found.c.entered_on, found.c.moved_on,
                        func.count().label("moves"))
                 .where(found.c.entered_on.is_not(None))
                 .group_by(found.c.trigger, found.c.entered_on, found.c.moved_on))
        with self.db.connect(unbounded=True) as conn:
            yield from _stream(conn, query)

    def deadline_starts(self, definition_sha256: str, trigger: str, move_kind: str,
                        start_triggers: Sequence[str] | None, state_change_kinds: Sequence[str],
                        extension_triggers: Sequence[str], start: date | None, end: date | None,
                        organization_ids: Sequence[int] | None) -> Iterator[Row[Any]]:
        """Moves ``trigger`` made under one definition version and dated in [start, end),
        counted per (date their deadline's clock started, extended or not, date of the move).

        The clock started on the business date of the case's last earlier event of
        ``start_triggers`` — or, when that is None, of its last earlier state change (the
        date it entered the source state). It was extended when an earlier move of
        ``extension_triggers`` exists. Moves with no such start event come back with
        ``started_on`` None.
        """
        move, earlier = audit_events.alias("move"), audit_events.alias("earlier")
        extension = audit_events.alias("extension")
        if start_triggers is None:
            starts_clock = _state_change(earlier, state_change_kinds)
        else:
            starts_clock = and_(earlier.c.kind.in_(list(state_change_kinds)),
                                earlier.c.trigger.in_(list(start_triggers)))
        if extension_triggers:
            extended: Any = case((exists().where(
                extension.c.case_id == move.c.case_id, extension.c.seq < move.c.seq,
                extension.c.kind == move_kind,
                extension.c.trigger.in_(list(extension_triggers))), 1), else_=0)
        else:
            extended = literal(0)
        moves = (select(_last_before(move, earlier, starts_clock).label("started_on"),
                        extended.label("extended"), move.c.business_date.label("moved_on"))
                 .where(move.c.kind == move_kind, move.c.trigger == trigger,
                        move.c.definition_sha256 == definition_sha256,
                        *_between(move.c.business_date, start, end)))
        found = _materialized(_scoped(moves, move, organization_ids))
        query = (select(found.c.started_on, found.c.extended, found.c.moved_on,
                        func.count().label("moves"))
                 .group_by(found.c.started_on, found.c.extended, found.c.moved_on))
        with self.db.connect(unbounded=True) as conn:
            yield from _stream(conn, query)


def _state_change(event: Any, kinds: Sequence[str]) -> Any:
    return and_(event.c.kind.in_(list(kinds)),
                or_(event.c.from_state.is_(None), event.c.from_state != event.c.to_state))


def _last_before(move: Any, earlier: Any, condition: Any) -> Any:
    """The business date of the case's last event before ``move`` that meets ``condition``
    (a backwards seek on the (case_id, seq) primary key)."""
    return (select(earlier.c.business_date)
            .where(earlier.c.case_id == move.c.case_id, earlier.c.seq < move.c.seq, condition)
            .order_by(earlier.c.seq.desc()).limit(1).scalar_subquery())


def _scoped(query: Any, move: Any, organization_ids: Sequence[int] | None) -> Any:
    scope = _in_organizations(organization_ids)
    return query if scope is None else query.where(move.c.case_id.in_(select(cases.c.id).where(scope)))


def _materialized(query: Any) -> Any:
    """Materialized, so the correlated lookups run once per move and not again for grouping."""
    return query.cte("moves").prefix_with("MATERIALIZED")
