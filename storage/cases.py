"""Cases and their audited moves. A move is one transaction: version-checked UPDATE of the
case, INSERT of the chained audit event, INSERT of its documents — all or nothing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any, NamedTuple

from memberflow.errors import AlreadyApplied, Conflict, NotFound
from memberflow.i18n import _
from memberflow.storage.chain import FIELDS, GENESIS, canonical_json, seal, utc_now
from memberflow.storage.database import Database
from memberflow.storage.schema import (
    audit_events,
    cases,
    definition_versions,
    documents,
    organizations,
    overdue_flags,
    people,
)
from sqlalchemy import Connection, bindparam, exists, func, or_, select, update


@dataclass(frozen=True)
class CaseRecord:
    id: int
    person_id: int
    organization_id: int
    organization_code: str
    definition_id: int
    definition_sha256: str
    state: str
    version: int
    seq: int
    head_hash: str
    facts: dict[str, Any]
    opened_on: date
    due_on: date | None
    due_move: str | None
    due_calendar: str | None = None


class StoredDue(NamedTuple):
    """A case's next deadline as the case row keeps it (an index for ``due`` and ``tick``):
    the date, the move due, and the calendar version it was counted on."""

    on: date
    move: str
    calendar: str


@dataclass(frozen=True)
class DueRow:
    """What counting a case's stored deadline again needs."""

    id: int
    definition_id: int
    state: str
    facts: dict[str, Any]
    due: StoredDue | None


@dataclass(frozen=True)
class EventDraft:
    """What the caller decides about an audit event; storage adds sequence, time and hashes."""

    kind: str
    trigger: str
    actor: str
    role: str
    business_date: date
    payload: Mapping[str, Any]
    # The request this move answers (a bulk file's row): stored in the payload, under the
    # chain, and in the event's request_key column, unique per case.
    request_key: str | None = None

    def payload_text(self) -> str:
        payload = {**self.payload, REQUEST_KEY: self.request_key} if self.request_key \
            else self.payload
        return canonical_json(payload)


REQUEST_KEY = "request_key"


_CASE_QUERY = (
    select(cases, organizations.c.code.label("organization_code"),
           definition_versions.c.sha256.label("definition_sha256"))
    .join(organizations, organizations.c.id == cases.c.organization_id)
    .join(definition_versions, definition_versions.c.id == cases.c.definition_id)
)


_LOAD = _CASE_QUERY.where(cases.c.id == bindparam("case_id"))
# A move locks its case row on PostgreSQL, so a second officer's move on the same case waits
# and then decides on the state the first one left (SQLite's BEGIN IMMEDIATE already
# serializes writers; it renders no FOR UPDATE).
#
# A locking read that waited can come back empty for a case that exists: under READ COMMITTED,
# PostgreSQL re-checks a row it waited for against the query with the row's new version but
# the other tables' rows as first read, so when the writer it waited for changed a join column
# (``definition migrate`` re-pins definition_id) the row is left out, though it stays locked
# by us. Reading again (a new statement sees what that writer committed) finds it; a case is
# never deleted, so only a second empty read means there is no such case.
_LOAD_FOR_MOVE = _LOAD.with_for_update(of=cases)
_LOCK_PERSON = select(people.c.id).where(people.c.id == bindparam("person_id")).with_for_update()
_KEYED_EVENT = (select(audit_events.c.seq, audit_events.c.trigger, audit_events.c.actor,
                       audit_events.c.recorded_at)
                .where(audit_events.c.case_id == bindparam("case_id"),
                       audit_events.c.request_key == bindparam("request_key")))
_LAST_EVENT = (select(audit_events.c.seq, audit_events.c.trigger, audit_events.c.actor,
                      audit_events.c.recorded_at)
               .where(audit_events.c.case_id == bindparam("case_id"))
               .order_by(audit_events.c.seq.desc()).limit(1))
# Built once: the per-move statements are the hot path, so no per-call statement building.
_ADVANCE = (
    update(cases)
    .where(cases.c.id == bindparam("b_id"), cases.c.version == bindparam("b_version"))
    .values(state=bindparam("b_state"), version=bindparam("b_new_version"),
            seq=bindparam("b_seq"), head_hash=bindparam("b_head"), facts=bindparam("b_facts"),
            due_on=bindparam("b_due_on"), due_move=bindparam("b_due_move"),
            due_calendar=bindparam("b_due_calendar"), updated_at=bindparam("b_updated_at"))
)
# A migration also re-pins the case to another definition version.
_MIGRATE = _ADVANCE.values(definition_id=bindparam("b_definition_id"))
_INSERT_EVENT = audit_events.insert()
_INSERT_DOCUMENT = documents.insert()
# Stored deadlines are an index kept by whoever changes what they are counted from (a move,
# a calendar change); setting them is not a move, so the case's version stays as it is.
_DUE_ROWS = select(cases.c.id, cases.c.definition_id, cases.c.state, cases.c.facts, cases.c.due_on,
                   cases.c.due_move, cases.c.due_calendar)
_SET_DUE = (update(cases).where(cases.c.id == bindparam("b_id"))
            .values(due_on=bindparam("b_on"), due_move=bindparam("b_move"),
                    due_calendar=bindparam("b_calendar")))
# Most deadlines a calendar change concerns keep their day and only get the new version: the
# indexes on the due date are then left alone.
_SET_DUE_CALENDAR = (update(cases).where(cases.c.id == bindparam("b_id"))
                     .values(due_calendar=bindparam("b_calendar")))


def _record(row: Any) -> CaseRecord:
    m = row._mapping
    return CaseRecord(
        id=m["id"], person_id=m["person_id"], organization_id=m["organization_id"],
        organization_code=m["organization_code"], definition_id=m["definition_id"],
        definition_sha256=m["definition_sha256"], state=m["state"], version=m["version"],
        seq=m["seq"], head_hash=m["head_hash"], facts=json.loads(m["facts"]),
        opened_on=m["opened_on"], due_on=m["due_on"], due_move=m["due_move"],
        due_calendar=m["due_calendar"],
    )


def _due_row(row: Any) -> DueRow:
    due = StoredDue(row.due_on, row.due_move, row.due_calendar) if row.due_on is not None else None
    return DueRow(row.id, row.definition_id, row.state, json.loads(row.facts), due)


def event_fields(case_id: int, seq: int, sha: str, from_state: str | None, to_state: str,
                 draft: EventDraft, prev_hash: str, recorded_at: str) -> tuple[Any, ...]:
    """The fields of one step's audit row in ``chain.FIELDS`` order, as every write path
    stores and hashes them (the driver-level hot path takes them as a tuple)."""
    return (case_id, seq, draft.kind, sha, draft.trigger, from_state, to_state, draft.actor,
            draft.role, recorded_at, draft.business_date, draft.payload_text(), prev_hash)


def event_row(case_id: int, seq: int, sha: str, from_state: str | None, to_state: str,
              draft: EventDraft, prev_hash: str, recorded_at: str) -> dict[str, Any]:
    """The audit row of one step as a mapping, sealed with its chain hash, with its request
    key (the chain covers the key through the payload)."""
    row = seal(dict(zip(FIELDS, event_fields(case_id, seq, sha, from_state, to_state, draft,
                                              prev_hash, recorded_at), strict=True)))
    row[REQUEST_KEY] = draft.request_key
    return row


def keyed(draft: EventDraft, request_key: str | None) -> EventDraft:
    """The draft answering request ``request_key`` (unchanged when there is none)."""
    return replace(draft, request_key=request_key) if request_key else draft


def already_applied(case_id: int, row: Sequence[Any]) -> AlreadyApplied:
    """The error saying the keyed move was applied before, from its event's (seq, trigger,
    actor, recorded_at)."""
    return AlreadyApplied(case_id, *row)


def stale_message(case: CaseRecord) -> str:
    return (_("case {id} was changed by someone else since it was read (version {version}); show it again "
              "and retry").format(id=case.id, version=case.version))


class Cases:
    def __init__(self, db: Database) -> None:
        self.db = db

    def open(self, person_id: int, organization_id: int, definition_id: int,
             definition_sha256: str, initial_state: str, facts: Mapping[str, Any],
             due: StoredDue | None, draft: EventDraft,
             check_existing: Callable[[list[CaseRecord]], None],
             attached: Mapping[str, str] | None = None) -> int:
        """Create the case and its first audit event (the chain's genesis) together.

        ``check_existing`` sees the person's other cases inside the same write transaction,
        so two officers opening a case for one person at once cannot both succeed: on
        PostgreSQL the person's row is locked first (SQLite's write lock already serializes).
        """
        now = utc_now()
        with self.db.write() as conn:
            conn.execute(_LOCK_PERSON, {"person_id": person_id})
            check_existing(self.of_person(person_id, conn))
            case_id = conn.execute(cases.insert().values(
                person_id=person_id, organization_id=organization_id,
                definition_id=definition_id, state=initial_state, version=1, seq=1,
                head_hash="", facts=canonical_json(facts), opened_on=draft.business_date,
                due_on=due.on if due else None, due_move=due.move if due else None,
                due_calendar=due.calendar if due else None,
                updated_at=now)).inserted_primary_key[0]
            event = event_row(case_id, 1, definition_sha256, None, initial_state, draft,
                               GENESIS, now)
            conn.execute(audit_events.insert().values(event))
            if attached:  # filed with the opening (a readmission's consent)
                conn.execute(_INSERT_DOCUMENT, [
                    {"case_id": case_id, "seq": 1, "code": code, "reference": ref,
                     "recorded_at": now} for code, ref in attached.items()])
            conn.execute(update(cases).where(cases.c.id == case_id)
                         .values(head_hash=event["hash"]))
        return case_id

    def load(self, case_id: int, conn: Connection | None = None,
             for_move: bool = False) -> CaseRecord:
        if conn is None:
            with self.db.connect() as own:
                return self.load(case_id, own)
        query = _LOAD_FOR_MOVE if for_move else _LOAD
        row = conn.execute(query, {"case_id": case_id}).first()
        if row is None and for_move:  # the locked row may have changed: read it again
            row = conn.execute(query, {"case_id": case_id}).first()
        if row is None:
            raise NotFound(_("case {case_id} not found").format(case_id=case_id))
        return _record(row)

    def last_event(self, case_id: int) -> dict[str, Any] | None:
        """The newest audit event of a case (seq, trigger, actor, recorded_at)."""
        with self.db.connect() as conn:
            row = conn.execute(_LAST_EVENT, {"case_id": case_id}).first()
        return dict(row._mapping) if row else None

    def applied(self, case_id: int, request_key: str | None,
                conn: Connection | None = None) -> AlreadyApplied | None:
        """The event that already applied ``request_key`` to the case, as the error saying
        so; None when the case's record does not hold the key."""
        if request_key is None:
            return None
        if conn is None:
            with self.db.connect() as own:
                return self.applied(case_id, request_key, own)
        row = conn.execute(_KEYED_EVENT, {"case_id": case_id, "request_key": request_key}).first()
        return already_applied(case_id, tuple(row)) if row is not None else None

    def record_move(self, case: CaseRecord, to_state: str, facts: Mapping[str, Any],
                    due: StoredDue | None, draft: EventDraft,
                    attached: Mapping[str, str]) -> int:
        """Commit one move; a writer holding a stale version gets ``Conflict``."""
        with self.db.connect() as conn:
            return self.record_move_in(conn, case, to_state, facts, due, draft, attached)

    def record_move_in(self, conn: Connection, case: CaseRecord, to_state: str,
                       facts: Mapping[str, Any], due: StoredDue | None,
                       draft: EventDraft, attached: Mapping[str, str],
                       repin: tuple[int, str] | None = None) -> int:
        """Write one audited step; ``repin`` = (definition id, sha256) moves the case to
        another definition version in the same step (a migration event). A keyed draft
        whose key the case already holds is refused by the unique index (``RequestKeyTaken``)."""
        now, seq = utc_now(), case.seq + 1
        sha = repin[1] if repin else case.definition_sha256
        event = event_row(case.id, seq, sha, case.state, to_state, draft, case.head_hash, now)
        values = {
            "b_id": case.id, "b_version": case.version, "b_state": to_state,
            "b_new_version": case.version + 1, "b_seq": seq, "b_head": event["hash"],
            "b_facts": canonical_json(facts), "b_due_on": due.on if due else None,
            "b_due_move": due.move if due else None,
            "b_due_calendar": due.calendar if due else None, "b_updated_at": now}
        if repin:
            values["b_definition_id"] = repin[0]
        changed = conn.execute(_MIGRATE if repin else _ADVANCE, values).rowcount
        if changed != 1:
            raise Conflict(stale_message(case))
        conn.execute(_INSERT_EVENT, event)
        if attached:
            conn.execute(_INSERT_DOCUMENT, [
                {"case_id": case.id, "seq": seq, "code": code, "reference": ref,
                 "recorded_at": now} for code, ref in attached.items()])
        return seq

    def on_other_versions(self, name: str, target_id: int, after_id: int,
                          limit: int) -> list[CaseRecord]:
        """Cases of definition ``name`` not pinned to version ``target_id``, by id from
        ``after_id`` on: a migration walks them chunk by chunk."""
        query = (_CASE_QUERY.where(definition_versions.c.name == name,
                                   cases.c.definition_id != target_id, cases.c.id > after_id)
                 .order_by(cases.c.id).limit(limit))
        with self.db.connect() as conn:
            return [_record(r) for r in conn.execute(query)]

    def missing(self, case_ids: Iterable[int]) -> set[int]:
        """The ids of ``case_ids`` no case has (asked in chunks: a file may name thousands)."""
        wanted = sorted(set(case_ids))
        found: set[int] = set()
        with self.db.connect() as conn:
            for start in range(0, len(wanted), 5000):
                chunk = wanted[start:start + 5000]
                found.update(conn.execute(select(cases.c.id).where(cases.c.id.in_(chunk))).scalars())
        return set(wanted) - found

    def ids_in(self, definition_id: int, states: list[str]) -> list[int]:
        query = (select(cases.c.id).where(cases.c.definition_id == definition_id,
                                          cases.c.state.in_(states)).order_by(cases.c.id))
        with self.db.connect() as conn:
            return list(conn.execute(query).scalars())

    def due_rows(self, conn: Connection, since: date | None = None,
                 labelled_otherwise: Sequence[str] | None = None, chunk: int = 1000,
                 lock: bool = False) -> Iterator[list[DueRow]]:
        """Cases with a stored deadline, by id, ``chunk`` at a time: those due on or after
        ``since``, and (``labelled_otherwise``) those whose calendar version is none of these
        or not recorded. ``lock``: each chunk's rows are locked (PostgreSQL) until the caller's
        transaction ends, so a move on one of them waits for the new deadline."""
        after = 0
        while True:
            query = _DUE_ROWS.where(cases.c.due_on.is_not(None), cases.c.id > after)
            if since is not None:
                query = query.where(cases.c.due_on >= since)
            if labelled_otherwise is not None:
                query = query.where(or_(cases.c.due_calendar.is_(None),
                                        cases.c.due_calendar.not_in(labelled_otherwise)))
            query = query.order_by(cases.c.id).limit(chunk)
            rows = conn.execute(query.with_for_update() if lock else query).all()
            if not rows:
                return
            yield [_due_row(r) for r in rows]
            after = rows[-1].id

    def set_due(self, conn: Connection, changed: Sequence[tuple[DueRow, StoredDue | None]]) -> None:
        """Store the deadlines counted again (each with the row it was counted from)."""
        relabelled = [{"b_id": row.id, "b_calendar": due.calendar} for row, due in changed
                      if due is not None and row.due is not None and due[:2] == row.due[:2]]
        moved = [{"b_id": row.id, "b_on": due.on if due else None, "b_move": due.move if due else None,
                  "b_calendar": due.calendar if due else None} for row, due in changed
                 if due is None or row.due is None or due[:2] != row.due[:2]]
        if relabelled:
            conn.execute(_SET_DUE_CALENDAR, relabelled)
        if moved:
            conn.execute(_SET_DUE, moved)

    def due_span(self, conn: Connection) -> tuple[date | None, date | None]:
        """The earliest and the latest stored deadline."""
        row = conn.execute(select(func.min(cases.c.due_on), func.max(cases.c.due_on))).one()
        return row[0], row[1]

    def flag_overdue(self, as_of: date) -> int:
        """Flag every case whose next deadline passed before ``as_of``; returns new flags."""
        flagged = exists().where(overdue_flags.c.case_id == cases.c.id,
                                 overdue_flags.c.move == cases.c.due_move,
                                 overdue_flags.c.due_on == cases.c.due_on)
        missed = select(cases.c.id, cases.c.due_move, cases.c.due_on).where(cases.c.due_on < as_of, ~flagged)
        now = utc_now()
        with self.db.write() as conn:
            rows = [{"case_id": r.id, "move": r.due_move, "due_on": r.due_on, "flagged_on": as_of,
                     "recorded_at": now} for r in conn.execute(missed)]
            if rows:
                conn.execute(overdue_flags.insert(), rows)
            return len(rows)

    def overdue_flags(self, case_id: int) -> list[dict[str, Any]]:
        query = select(overdue_flags).where(overdue_flags.c.case_id == case_id) \
            .order_by(overdue_flags.c.due_on)
        with self.db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def history(self, case_id: int) -> list[dict[str, Any]]:
        query = select(audit_events).where(audit_events.c.case_id == case_id) \
            .order_by(audit_events.c.seq)
        with self.db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def documents(self, case_id: int) -> list[dict[str, Any]]:
        query = select(documents).where(documents.c.case_id == case_id).order_by(documents.c.id)
        with self.db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def of_person(self, person_id: int, conn: Connection | None = None) -> list[CaseRecord]:
        if conn is None:
            with self.db.connect() as own:
                return self.of_person(person_id, own)
        rows = conn.execute(_CASE_QUERY.where(cases.c.person_id == person_id).order_by(cases.c.id))
        return [_record(r) for r in rows]

    def listing(self, organization_ids: list[int] | None = None, states: list[str] | None = None,
                due_until: date | None = None, limit: int = 1000) -> Iterator[dict[str, Any]]:
        query = (select(cases.c.id, cases.c.state, cases.c.opened_on, cases.c.due_on,
                        cases.c.due_move, cases.c.due_calendar, cases.c.seq, cases.c.person_id,
                        people.c.full_name,
                        organizations.c.code.label("organization"),
                        definition_versions.c.sha256.label("definition_sha256"))
                 .join(people, people.c.id == cases.c.person_id)
                 .join(organizations, organizations.c.id == cases.c.organization_id)
                 .join(definition_versions, definition_versions.c.id == cases.c.definition_id))
        if organization_ids is not None:
            query = query.where(cases.c.organization_id.in_(organization_ids))
        if states is not None:
            query = query.where(cases.c.state.in_(states))
        if due_until is not None:
            query = query.where(cases.c.due_on <= due_until).order_by(
                organizations.c.code, cases.c.due_on, cases.c.id)
        else:
            query = query.order_by(cases.c.id)
        with self.db.connect() as conn:
            for row in conn.execute(query.limit(limit)):
                yield dict(row._mapping)

    def count_events(self) -> int:
        with self.db.connect() as conn:
            return conn.execute(select(func.count()).select_from(audit_events)).scalar_one()

    def count_by_state(self) -> dict[str, int]:
        with self.db.connect() as conn:
            rows = conn.execute(select(cases.c.state, func.count()).group_by(cases.c.state))
            return {state: count for state, count in rows}
