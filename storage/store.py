"""The storage facade the workflow service and the CLI talk to."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, bindparam, select

from .assessments import Assessments
from .calendar import CalendarDays
from .cases import CaseRecord, Cases, EventDraft
from .database import Database
from .definitions import DefinitionVersions
from .directory import Directory
from .errors import Busy, Missing
from .hotpath import Batch, MoveSQL, Step, decide_step, reread, supports
from .schema import cases as case_rows
from .schema import installation


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
    due: tuple[date, str] | None
    draft: EventDraft
    attached: Mapping[str, str]
    # (definition id, sha256) when the step re-pins the case to another definition version.
    repin: tuple[int, str] | None = None


# The caller's decision for one move, made on what the move's transaction read.
Decide = Callable[[MoveSnapshot], MoveWrite]

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

    def move(self, case_id: int, username: str, decide: Decide) -> tuple[MoveSnapshot, int]:
        """Read, let the caller decide, and write — one transaction, all or nothing."""
        try:
            return self._move(case_id, username, decide)
        except Busy:
            raise Busy(f"case {case_id} is being changed by another session; try again") from None

    def _move(self, case_id: int, username: str, decide: Decide) -> tuple[MoveSnapshot, int]:
        if self._sql is None:
            with self.db.write() as conn:
                return self._move_in(conn, case_id, username, decide)
        with self.db.driver_write() as cursor:
            snapshot = MoveSnapshot(*self._sql.snapshot(cursor, case_id, username))
            step = decide_step(snapshot.case, decide(snapshot))
            self._sql.write_one(cursor, snapshot.case, step)
        return snapshot, step.after.seq

    def move_many(self, moves: Sequence[tuple[int, Decide]],
                  username: str) -> list[tuple[MoveSnapshot, int]]:
        """``move`` for each (case id, decide) pair in order, all in ONE transaction: one
        commit for the lot, and nothing written if any decide or write fails.

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
            raise Busy("a case of the batch is being changed by another session; nothing "
                       "written — try again") from None

    def _move_many(self, moves: Sequence[tuple[int, Decide]],
                   username: str) -> list[tuple[MoveSnapshot, int]]:
        if self._sql is None:
            with self.db.write() as conn:
                if not self.db.is_sqlite:
                    self._lock_in_order(conn, sorted({case_id for case_id, _ in moves}))
                return [self._move_in(conn, case_id, username, decide) for case_id, decide in moves]
        with self.db.driver_write() as cursor:
            read = self._sql.batch(cursor, (case_id for case_id, _ in moves), username)
            first = dict(read.cases)
            done, steps = _decide_batch(moves, read)
            self._sql.write_many(cursor, steps, first)
        return done

    @staticmethod
    def _lock_in_order(conn: Connection, ids: list[int]) -> None:
        """Row-lock the cases in ascending id order (chunked: a statement's bind parameters
        are limited)."""
        for start in range(0, len(ids), _LOCK_CHUNK):
            conn.execute(_LOCK_CASES, {"ids": ids[start:start + _LOCK_CHUNK]})

    def _move_in(self, conn: Connection, case_id: int, username: str,
                 decide: Decide) -> tuple[MoveSnapshot, int]:
        """One read-decide-write on a transaction the caller holds."""
        snapshot = self.snapshot_for_move(case_id, username, conn)
        write = decide(snapshot)
        seq = self.cases.record_move_in(conn, snapshot.case, write.to_state, write.facts,
                                        write.due, write.draft, write.attached, write.repin)
        return snapshot, seq

    def setting(self, key: str) -> str | None:
        with self.db.connect() as conn:
            return conn.execute(select(installation.c.value)
                                .where(installation.c.key == key)).scalar()

    def set_setting(self, key: str, value: str) -> None:
        with self.db.connect() as conn:
            conn.execute(installation.delete().where(installation.c.key == key))
            conn.execute(installation.insert().values(key=key, value=value))


def _decide_batch(moves: Sequence[tuple[int, Decide]],
                  read: Batch) -> tuple[list[tuple[MoveSnapshot, int]], list[Step]]:
    """Decide every move of a batch in order, each on the case as the earlier ones left it;
    the first refusal (or unknown case) stops the batch before anything is written."""
    left: dict[int, int] = {}  # moves still to come per case: only those need their facts re-read
    for case_id, _ in moves:
        left[case_id] = left.get(case_id, 0) + 1
    done: list[tuple[MoveSnapshot, int]] = []
    steps: list[Step] = []
    for case_id, decide in moves:
        case = read.cases.get(case_id)
        if case is None:
            raise Missing(f"case {case_id} not found")
        snapshot = MoveSnapshot(case, read.people[case_id], read.roles[case.organization_id])
        step = decide_step(case, decide(snapshot))
        left[case_id] -= 1
        if left[case_id]:
            read.cases[case_id] = reread(step)
        steps.append(step)
        done.append((snapshot, step.after.seq))
    return done, steps
