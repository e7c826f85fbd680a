"""The storage facade the workflow service and the CLI talk to."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, NamedTuple

from memberflow.errors import AlreadyApplied, Busy, Conflict, NotFound, RequestKeyTaken
from memberflow.i18n import _
from memberflow.storage.assessments import Assessments
from memberflow.storage.calendar import CalendarChange, CalendarDays
from memberflow.storage.cases import CaseRecord, Cases, EventDraft, StoredDue, already_applied, keyed
from memberflow.storage.database import Database
from memberflow.storage.definitions import DefinitionVersions
from memberflow.storage.directory import Directory
from memberflow.storage.move_sql import Batch, MoveSQL, Step, decide_step, reread, supports
from memberflow.storage.schema import cases as case_rows
from memberflow.storage.schema import installation
from sqlalchemy import Connection, bindparam, select


@dataclass(frozen=True)
class MoveSnapshot:
    """Everything a move reads, taken in one read transaction."""

    case: CaseRecord
    person: dict[str, Any]
    roles: frozenset[str]


@dataclass(frozen=True)
class MoveWrite:
    """What the caller decided: the case's new state and facts and its audit event."""

    to_state: str
    facts: Mapping[str, Any]
    due: StoredDue | None
    draft: EventDraft
    attached: Mapping[str, str]
    # (definition id, sha256) when the step re-pins the case to another definition version.
    repin: tuple[int, str] | None = None


# The caller's decision for one move, made on what the move's transaction read.
Decide = Callable[[MoveSnapshot], MoveWrite]


class MoveOrder(NamedTuple):
    """One move of a batch: the case, the caller's decision and, for a request that must
    never be applied twice (a bulk file's row), its key."""

    case_id: int
    decide: Decide
    request_key: str | None = None


# What a batch did for each order: the move written (snapshot, event seq), or the event that
# had already applied its key.
Done = tuple[MoveSnapshot, int] | AlreadyApplied

_LOCK_CHUNK = 1000
_LOCK_CASES = (select(case_rows.c.id).where(case_rows.c.id.in_(bindparam("ids", expanding=True)))
               .order_by(case_rows.c.id).with_for_update())


class Store:
    def __init__(self, target: str | None, must_exist: bool = True) -> None:
        self.db = Database(target, must_exist=must_exist)
        self.directory = Directory(self.db)
        self.definitions = DefinitionVersions(self.db)
        self.cases = Cases(self.db)
        self.calendar = CalendarDays(self.db)
        self.assessments = Assessments(self.db)
        paramstyle = self.db.engine.dialect.paramstyle
        # Moves run on the driver connection where we write the SQL (SQLite, PostgreSQL);
        # any other database keeps the SQLAlchemy Core path.
        self._sql = MoveSQL(self.db.backend, paramstyle) \
            if supports(self.db.backend, paramstyle) else None

    @property
    def url(self) -> str:
        return self.db.url

    def create_schema(self) -> None:
        self.db.create_schema()

    def calendar_change(self, dry_run: bool = False) -> AbstractContextManager[CalendarChange]:
        """A calendar change and the stored deadlines it moves, in one transaction."""
        return self.calendar.change(self.cases, dry_run)

    def close(self) -> None:
        self.db.dispose()

    def snapshot_for_move(self, case_id: int, username: str,
                          conn: Connection | None = None) -> MoveSnapshot:
        if conn is None:
            with self.db.connect() as own:
                return self.snapshot_for_move(case_id, username, own)
        case = self.cases.load(case_id, conn, for_move=True)
        return MoveSnapshot(case, self.directory.person(case.person_id, conn),
                            self.directory.roles_at(username, case.organization_id, conn))

    def move(self, case_id: int, username: str, decide: Decide,
             request_key: str | None = None) -> tuple[MoveSnapshot, int]:
        """Read, let the caller decide, and write — one transaction, all or nothing.

        A keyed move whose key the case's record already holds raises ``AlreadyApplied``
        (naming that event) before ``decide`` is called, and writes nothing: the lookup runs
        after the case is locked, and the unique index on (case, key) backs it up.
        """
        try:
            return self._move(case_id, username, decide, request_key)
        except Busy:
            raise Busy(_("case {case_id} is being changed by another session; try again").format(
                           case_id=case_id)) from None
        except RequestKeyTaken:
            raise self._applied_after_all(case_id, request_key) from None

    def _move(self, case_id: int, username: str, decide: Decide,
              request_key: str | None) -> tuple[MoveSnapshot, int]:
        if self._sql is None:
            with self.db.write() as conn:
                return self._move_in(conn, MoveOrder(case_id, decide, request_key), username)
        with self.db.driver_write() as cursor:
            snapshot = MoveSnapshot(*self._sql.snapshot(cursor, case_id, username))
            found = self._sql.applied(cursor, case_id, request_key)
            if found is not None:
                raise found
            step = decide_step(snapshot.case, decide(snapshot), request_key)
            self._sql.write_one(cursor, snapshot.case, step)
        return snapshot, step.after.seq

    def move_many(self, moves: Sequence[MoveOrder], username: str) -> list[Done]:
        """``move`` for each order in turn, all in ONE transaction: one commit for the lot,
        and nothing written if any decide or write fails. An order whose key the case's
        record already holds (or an earlier order of the batch wrote) is not decided: its
        result is that event, as ``AlreadyApplied``.

        Each move re-reads its case inside the transaction, so a case named twice is decided
        the second time on the state its first move left. On PostgreSQL the batch first locks
        all its cases in id order, so two batches sharing cases wait for each other instead
        of deadlocking; each move then takes the same row lock and version check as ``move``.
        """
        if not moves:
            return []
        try:
            return self._move_many(moves, username)
        except Busy:
            raise Busy(_("a case of the batch is being changed by another session; nothing written — try "
                         "again")) from None

    def _move_many(self, moves: Sequence[MoveOrder], username: str) -> list[Done]:
        if self._sql is None:
            with self.db.write() as conn:
                if not self.db.is_sqlite:
                    self._lock_in_order(conn, sorted({order.case_id for order in moves}))
                return [self._done_in(conn, order, username) for order in moves]
        with self.db.driver_write() as cursor:
            read = self._sql.batch(cursor, (order.case_id for order in moves), username)
            read.applied = self._sql.applied_many(
                cursor, [(o.case_id, o.request_key) for o in moves if o.request_key])
            first = dict(read.cases)
            done, steps = _decide_batch(moves, read)
            self._sql.write_many(cursor, steps, first)
        return done

    def _applied_after_all(self, case_id: int, request_key: str | None) -> Exception:
        """The unique index refused a keyed event the lookup did not find (a run racing this
        one without the lock): the event that holds the key, once committed."""
        found = self.cases.applied(case_id, request_key)
        if found is None:
            return Conflict(_("case {case_id}: request {request_key} was being applied by another run at "
                              "the same time; nothing written — run the file again").format(
                                case_id=case_id, request_key=request_key))
        return found

    @staticmethod
    def _lock_in_order(conn: Connection, ids: list[int]) -> None:
        """Row-lock the cases in ascending id order (chunked: a statement's bind parameters
        are limited)."""
        for start in range(0, len(ids), _LOCK_CHUNK):
            conn.execute(_LOCK_CASES, {"ids": ids[start:start + _LOCK_CHUNK]})

    def _done_in(self, conn: Connection, order: MoveOrder, username: str) -> Done:
        try:
            return self._move_in(conn, order, username)
        except AlreadyApplied as found:
            return found

    def _move_in(self, conn: Connection, order: MoveOrder,
                 username: str) -> tuple[MoveSnapshot, int]:
        """One read-decide-write on a transaction the caller holds."""
        snapshot = self.snapshot_for_move(order.case_id, username, conn)
        found = self.cases.applied(order.case_id, order.request_key, conn)
        if found is not None:
            raise found
        write = order.decide(snapshot)
        seq = self.cases.record_move_in(conn, snapshot.case, write.to_state, write.facts,
                                        write.due, keyed(write.draft, order.request_key),
                                        write.attached, write.repin)
        return snapshot, seq

    def setting(self, key: str) -> str | None:
        with self.db.connect() as conn:
            return conn.execute(select(installation.c.value)
                                .where(installation.c.key == key)).scalar()

    def set_setting(self, key: str, value: str) -> None:
        with self.db.connect() as conn:
            conn.execute(installation.delete().where(installation.c.key == key))
            conn.execute(installation.insert().values(key=key, value=value))


def _decide_batch(moves: Sequence[MoveOrder], read: Batch) -> tuple[list[Done], list[Step]]:
    """Decide every move of a batch in order, each on the case as the earlier ones left it;
    the first refusal (or unknown case) stops the batch before anything is written. An order
    whose key is already applied (before, or by an earlier order) is not decided."""
    left: dict[int, int] = {}  # moves still to come per case: only those need their facts re-read
    for order in moves:
        left[order.case_id] = left.get(order.case_id, 0) + 1
    done: list[Done] = []
    steps: list[Step] = []
    for case_id, decide, request_key in moves:
        case = read.cases.get(case_id)
        if case is None:
            raise NotFound(_("case {case_id} not found").format(case_id=case_id))
        left[case_id] -= 1
        found = read.applied.get((case_id, request_key)) if request_key else None
        if found is not None:
            done.append(found)
            continue
        snapshot = MoveSnapshot(case, read.people[case_id], read.roles[case.organization_id])
        step = decide_step(case, decide(snapshot), request_key)
        if left[case_id]:
            read.cases[case_id] = reread(step)
        if request_key:
            read.applied[(case_id, request_key)] = already_applied(
                case_id, (step.after.seq, step.event[4], step.event[7], step.recorded_at))
        steps.append(step)
        done.append((snapshot, step.after.seq))
    return done, steps
