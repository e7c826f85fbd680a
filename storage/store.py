"""The storage facade the workflow service and the CLI talk to."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Connection, select

from .cases import CaseRecord, Cases, EventDraft
from .database import Database
from .definitions import DefinitionVersions
from .directory import Directory
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


class Store:
    def __init__(self, target: str | None, must_exist: bool = True) -> None:
        self.db = Database(target, must_exist=must_exist)
        self.directory = Directory(self.db)
        self.definitions = DefinitionVersions(self.db)
        self.cases = Cases(self.db)

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

    def move(self, case_id: int, username: str,
             decide: Callable[[MoveSnapshot], MoveWrite]) -> tuple[MoveSnapshot, int]:
        """Read, let the caller decide, and write — one transaction, all or nothing."""
        with self.db.write() as conn:
            snapshot = self.snapshot_for_move(case_id, username, conn)
            write = decide(snapshot)
            seq = self.cases.record_move_in(conn, snapshot.case, write.to_state, write.facts,
                                            write.due, write.draft, write.attached)
            return snapshot, seq

    def setting(self, key: str) -> str | None:
        with self.db.connect() as conn:
            return conn.execute(select(installation.c.value)
                                .where(installation.c.key == key)).scalar()

    def set_setting(self, key: str, value: str) -> None:
        with self.db.connect() as conn:
            conn.execute(installation.delete().where(installation.c.key == key))
            conn.execute(installation.insert().values(key=key, value=value))
