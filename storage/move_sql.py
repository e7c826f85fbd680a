"""Audited moves on the bare driver connection: the hot path behind ``Store.move`` and
``Store.move_many`` on SQLite and PostgreSQL.

Why it exists: through SQLAlchemy Core a move ran six statements at roughly 0.15 ms of
statement building, parameter and result processing each, plus a pool checkout and a
transaction object per move, several times the database's own work. Here the SQL is
written once per database, the driver keeps it prepared (sqlite3's statement cache,
psycopg's automatic prepare), and a move is exactly:

* one read of the case with its organization code, definition hash, applicant and the
  actor's roles there (``SELECT … FOR UPDATE OF c`` on PostgreSQL; SQLite's BEGIN
  IMMEDIATE, taken by ``Database.driver_write``, already serializes writers);
* one ``UPDATE … WHERE id = ? AND version = ?`` that sets only the columns whose values
  change, so SQLite leaves the indexes on unchanged columns (state, due date) alone;
* one INSERT of the chained audit row and one of its documents.

A keyed move (a row of a bulk file, which must never be applied twice) also looks its key up
among the case's events once the case is read (and locked), and writes the key with its
audit row; a batch looks all its keys up in a few statements.

A batch reads all its cases (locked in id order on PostgreSQL) and their applicants in a
few statements, the roles once per organization, decides every move in memory on the state
the earlier moves of the batch left, then writes one UPDATE per case (from the version it
read to the last one) and all audit and document rows with ``executemany``. The rows
written are exactly those of the one-move-at-a-time path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from memberflow.errors import AlreadyApplied, Conflict, NotFound
from memberflow.i18n import _
from memberflow.storage.cases import CaseRecord, already_applied, event_fields, keyed, stale_message
from memberflow.storage.chain import canonical_json, row_digest, utc_now
from memberflow.storage.schema import people
from sqlalchemy import Boolean, Date

if TYPE_CHECKING:
    from memberflow.storage.store import MoveWrite

# A statement's bind parameters are limited (SQLite: 32,766; keep well below).
CHUNK = 500
_CASE_COLUMNS = ("c.id, c.person_id, c.organization_id, o.code, c.definition_id, d.sha256, "
                 "c.state, c.version, c.seq, c.head_hash, c.facts, c.opened_on, c.due_on, "
                 "c.due_move, c.due_calendar")
_CASE_WIDTH = 15
_PERSON_NAMES = tuple(column.name for column in people.columns)
_PERSON_DATES = frozenset(c.name for c in people.columns if isinstance(c.type, Date))
_PERSON_FLAGS = frozenset(c.name for c in people.columns if isinstance(c.type, Boolean))
_FROM = ("FROM cases c JOIN organizations o ON o.id = c.organization_id "
         "JOIN definition_versions d ON d.id = c.definition_id "
         "JOIN people p ON p.id = c.person_id")
# The roles a user holds at an organization or any above it, as one separated text.
_ROLES_AT = ("(WITH RECURSIVE up(id, parent_id) AS ("
             "SELECT u0.id, u0.parent_id FROM organizations u0 WHERE u0.id = {org} "
             "UNION ALL SELECT u1.id, u1.parent_id FROM organizations u1 "
             "JOIN up ON u1.id = up.parent_id) "
             "SELECT {agg} FROM role_grants g JOIN users u ON u.id = g.user_id "
             "WHERE u.username = ? AND (g.organization_id IS NULL "
             "OR g.organization_id IN (SELECT id FROM up)))")
_INSERT_EVENT = ('INSERT INTO audit_events (case_id, seq, kind, definition_sha256, "trigger", '
                 "from_state, to_state, actor, role, recorded_at, business_date, payload, "
                 "prev_hash, hash, request_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
_KEYED_EVENT = ('SELECT seq, "trigger", actor, recorded_at FROM audit_events '
                "WHERE case_id = ? AND request_key = ?")
_KEYED_EVENTS = ('SELECT case_id, request_key, seq, "trigger", actor, recorded_at FROM audit_events '
                 "WHERE case_id IN ({cases}) AND request_key IN ({keys})")
_INSERT_DOCUMENT = ("INSERT INTO documents (case_id, seq, code, reference, recorded_at) "
                    "VALUES (?, ?, ?, ?, ?)")
_SEPARATOR = "\x1f"


def supports(backend: str, paramstyle: str) -> bool:
    """Databases whose SQL this module writes; any other URL keeps the Core path."""
    return backend in ("sqlite", "postgresql") and paramstyle in ("qmark", "format", "pyformat")


@dataclass
class Step:
    """One decided move: its audit row (``chain.FIELDS``, the hash, the request key), its
    documents and the case as it leaves it."""

    event: tuple[Any, ...]
    documents: list[tuple[Any, ...]]
    after: CaseRecord
    facts_text: str
    recorded_at: str


@dataclass
class _Touched:
    """A case a batch moves: as it was read, and as its last move leaves it."""

    before: CaseRecord
    last: Step


@dataclass
class Batch:
    """What a batch read: cases (absent: not found), applicants, roles by organization."""

    cases: dict[int, CaseRecord] = field(default_factory=dict)
    people: dict[int, dict[str, Any]] = field(default_factory=dict)
    roles: dict[int, frozenset[str]] = field(default_factory=dict)
    # (case id, request key) → the event that already applied it
    applied: dict[tuple[int, str], AlreadyApplied] = field(default_factory=dict)


class MoveSQL:
    """The fixed SQL of a move for one database, and the reads and writes that run it."""

    def __init__(self, backend: str, paramstyle: str) -> None:
        postgresql = backend == "postgresql"
        self._native_dates = postgresql  # psycopg binds dates; SQLite stores them as ISO text
        self._mark = "?" if paramstyle == "qmark" else "%s"
        self._lock = " FOR UPDATE OF c" if postgresql else ""
        self._agg = "string_agg(g.role, chr(31))" if postgresql else "group_concat(g.role, char(31))"
        person = ", ".join(f"p.{name}" for name in _PERSON_NAMES)
        roles = _ROLES_AT.format(org="c.organization_id", agg=self._agg)
        self._one = self._sql(f"SELECT {_CASE_COLUMNS}, {person}, {roles} {_FROM} "
                              f"WHERE c.id = ?{self._lock}")
        self._many = f"SELECT {_CASE_COLUMNS}, {person} {_FROM} WHERE c.id IN ({{marks}}) " \
                     f"ORDER BY c.id{self._lock}"
        self._roles = self._sql("SELECT " + _ROLES_AT.format(org="?", agg=self._agg))
        self._event = self._sql(_INSERT_EVENT)
        self._keyed = self._sql(_KEYED_EVENT)
        self._document = self._sql(_INSERT_DOCUMENT)
        self._updates: dict[tuple[bool, bool, bool], str] = {}

    def _sql(self, text: str) -> str:
        return text if self._mark == "?" else text.replace("?", self._mark)

    # -- reads -------------------------------------------------------------------------
    def snapshot(self, cursor: Any, case_id: int,
                 username: str) -> tuple[CaseRecord, dict[str, Any], frozenset[str]]:
        """Case, applicant and the user's roles at the case, in one statement (twice when a
        wait for its lock ended with the case changed: see the note in ``cases``)."""
        cursor.execute(self._one, (username, case_id))
        row = cursor.fetchone()
        if row is None and self._lock:
            cursor.execute(self._one, (username, case_id))
            row = cursor.fetchone()
        if row is None:
            raise NotFound(_("case {case_id} not found").format(case_id=case_id))
        roles = row[-1]
        return (_case(row), _person(row[_CASE_WIDTH:-1]),
                frozenset(roles.split(_SEPARATOR)) if roles else frozenset())

    def batch(self, cursor: Any, case_ids: Iterable[int], username: str) -> Batch:
        """Every case of a batch and its applicant, in id order (locking on PostgreSQL, so
        two batches sharing cases wait for each other instead of deadlocking), then the
        user's roles at each organization met."""
        read = Batch()
        ids = sorted(set(case_ids))
        for start in range(0, len(ids), CHUNK):
            chunk = ids[start:start + CHUNK]
            self._read_cases(cursor, chunk, read)
            missed = [case_id for case_id in chunk if case_id not in read.cases]
            if missed and self._lock:  # changed while we waited: see the note in cases
                self._read_cases(cursor, missed, read)
        for organization_id in {case.organization_id for case in read.cases.values()}:
            cursor.execute(self._roles, (organization_id, username))
            roles = cursor.fetchone()[0]
            read.roles[organization_id] = frozenset(roles.split(_SEPARATOR)) if roles \
                else frozenset()
        return read

    def applied(self, cursor: Any, case_id: int, request_key: str | None) -> AlreadyApplied | None:
        """The event that already applied ``request_key`` to the case (read after the case
        is locked, so a run racing this one has committed or waits), or None."""
        if request_key is None:
            return None
        cursor.execute(self._keyed, (case_id, request_key))
        row = cursor.fetchone()
        return already_applied(case_id, row) if row is not None else None

    def applied_many(self, cursor: Any,
                     pairs: Sequence[tuple[int, str]]) -> dict[tuple[int, str], AlreadyApplied]:
        """``applied`` for every (case id, request key) of a batch, a few statements in all."""
        found: dict[tuple[int, str], AlreadyApplied] = {}
        wanted = set(pairs)
        ordered = sorted(wanted)
        for start in range(0, len(ordered), CHUNK):
            chunk = ordered[start:start + CHUNK]
            cases, keys = sorted({c for c, _ in chunk}), sorted({k for _, k in chunk})
            cursor.execute(self._sql(_KEYED_EVENTS.format(
                cases=", ".join("?" * len(cases)), keys=", ".join("?" * len(keys)))),
                [*cases, *keys])
            for case_id, key, *event in cursor.fetchall():
                if (case_id, key) in wanted:
                    found[(case_id, key)] = already_applied(case_id, event)
        return found

    def _read_cases(self, cursor: Any, ids: Sequence[int], read: Batch) -> None:
        cursor.execute(self._sql(self._many.format(marks=", ".join("?" * len(ids)))), ids)
        for row in cursor.fetchall():
            case = _case(row)
            read.cases[case.id] = case
            read.people[case.id] = _person(row[_CASE_WIDTH:])

    # -- writes ------------------------------------------------------------------------
    def write_one(self, cursor: Any, case: CaseRecord, step: Step) -> None:
        """The version-checked UPDATE, the audit row and the documents of one move."""
        sql, values = self._update(case, step)
        cursor.execute(sql, values)
        if cursor.rowcount != 1:
            raise Conflict(stale_message(case))
        cursor.execute(self._event, self._event_values(step.event))
        if len(step.documents) == 1:
            cursor.execute(self._document, step.documents[0])
        elif step.documents:
            cursor.executemany(self._document, step.documents)

    def write_many(self, cursor: Any, steps: Sequence[Step], first: Mapping[int, CaseRecord]) -> None:
        """A batch's rows: one UPDATE per case, from the version read to its last move's
        (grouped by the columns they set), then every audit row and document in order."""
        touched: dict[int, _Touched] = {}
        for step in steps:
            seen = touched.get(step.after.id)
            if seen is None:
                seen = touched[step.after.id] = _Touched(first[step.after.id], step)
            seen.last = step
        groups: dict[str, list[tuple[Any, ...]]] = {}
        for seen in touched.values():
            sql, values = self._update(seen.before, seen.last)
            groups.setdefault(sql, []).append(values)
        for sql, rows in groups.items():
            cursor.executemany(sql, rows)
            if cursor.rowcount != len(rows):
                raise Conflict(_("a case of the batch was changed by someone else since it was read; "
                                 "nothing written — show it again and retry"))
        cursor.executemany(self._event, [self._event_values(step.event) for step in steps])
        documents = [row for step in steps for row in step.documents]
        if documents:
            cursor.executemany(self._document, documents)

    def _update(self, before: CaseRecord, step: Step) -> tuple[str, tuple[Any, ...]]:
        """UPDATE of the case from ``before`` to ``step.after``; columns whose value is the
        same are not set, so the database skips their index maintenance."""
        after = step.after
        key = (after.state != before.state,
               (after.due_on, after.due_move, after.due_calendar)
               != (before.due_on, before.due_move, before.due_calendar),
               after.definition_id != before.definition_id)
        sql = self._updates.get(key)
        if sql is None:
            sql = self._updates[key] = self._update_sql(*key)
        values: list[Any] = [after.version, after.seq, after.head_hash, step.facts_text,
                             step.recorded_at]
        if key[0]:
            values.append(after.state)
        if key[1]:
            values += [self._bind_day(after.due_on), after.due_move, after.due_calendar]
        if key[2]:
            values.append(after.definition_id)
        return sql, (*values, before.id, before.version)

    def _update_sql(self, state: bool, due: bool, definition: bool) -> str:
        columns = ["version", "seq", "head_hash", "facts", "updated_at"]
        columns += ["state"] * state + ["due_on", "due_move", "due_calendar"] * due \
            + ["definition_id"] * definition
        assignments = ", ".join(f"{column} = ?" for column in columns)
        return self._sql(f"UPDATE cases SET {assignments} WHERE id = ? AND version = ?")

    def _event_values(self, event: tuple[Any, ...]) -> tuple[Any, ...]:
        if self._native_dates:
            return event
        return (*event[:10], event[10].isoformat(), *event[10 + 1:])

    def _bind_day(self, value: date | None) -> Any:
        """SQLite keeps dates as ISO text (what SQLAlchemy's Date type writes there)."""
        return value if self._native_dates or value is None else value.isoformat()


def decide_step(case: CaseRecord, write: MoveWrite, request_key: str | None = None,
                now: str | None = None) -> Step:
    """The audit row and the case after one decided move (nothing written yet); a keyed
    move's event carries its request key."""
    now = now or utc_now()
    seq = case.seq + 1
    definition_id, sha = write.repin if write.repin else (case.definition_id, case.definition_sha256)
    draft = keyed(write.draft, request_key)
    fields = event_fields(case.id, seq, sha, case.state, write.to_state, draft, case.head_hash, now)
    digest = row_digest(fields)
    due_on, due_move, due_calendar = write.due if write.due else (None, None, None)
    after = CaseRecord(
        id=case.id, person_id=case.person_id, organization_id=case.organization_id,
        organization_code=case.organization_code, definition_id=definition_id,
        definition_sha256=sha, state=write.to_state, version=case.version + 1, seq=seq,
        head_hash=digest, facts=write.facts, opened_on=case.opened_on, due_on=due_on,
        due_move=due_move, due_calendar=due_calendar)
    documents = [(case.id, seq, code, reference, now) for code, reference in write.attached.items()]
    return Step((*fields, digest, draft.request_key), documents, after,
                canonical_json(write.facts), now)


def reread(step: Step) -> CaseRecord:
    """The case after a step as a fresh read would give it (facts parsed from their stored
    text), for a later move of the same batch to decide on."""
    after = step.after
    return CaseRecord(
        id=after.id, person_id=after.person_id, organization_id=after.organization_id,
        organization_code=after.organization_code, definition_id=after.definition_id,
        definition_sha256=after.definition_sha256, state=after.state, version=after.version,
        seq=after.seq, head_hash=after.head_hash, facts=json.loads(step.facts_text),
        opened_on=after.opened_on, due_on=after.due_on, due_move=after.due_move,
        due_calendar=after.due_calendar)


def _day(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _case(row: Sequence[Any]) -> CaseRecord:
    return CaseRecord(
        id=row[0], person_id=row[1], organization_id=row[2], organization_code=row[3],
        definition_id=row[4], definition_sha256=row[5], state=row[6], version=row[7],
        seq=row[8], head_hash=row[9], facts=json.loads(row[10]), opened_on=_day(row[11]),
        due_on=_day(row[12]), due_move=row[13], due_calendar=row[14])


def _person(values: Sequence[Any]) -> dict[str, Any]:
    """The applicant's row as SQLAlchemy returns it: dates as dates, flags as booleans."""
    person = dict(zip(_PERSON_NAMES, values, strict=True))
    for name in _PERSON_DATES:
        person[name] = _day(person[name])
    for name in _PERSON_FLAGS:
        person[name] = bool(person[name])
    return person

