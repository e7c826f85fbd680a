"""The storage facade the workflow service and the CLI talk to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .cases import CaseRecord, Cases
from .database import Database
from .definitions import DefinitionVersions
from .directory import Directory


@dataclass(frozen=True)
class MoveSnapshot:
    """Everything a move reads, taken in one read transaction."""

    case: CaseRecord
    person: dict[str, Any]
    roles: frozenset[str]


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

    def snapshot_for_move(self, case_id: int, username: str) -> MoveSnapshot:
        with self.db.connect() as conn:
            case = self.cases.load(case_id, conn)
            return MoveSnapshot(case, self.directory.person(case.person_id, conn),
                                self.directory.roles_at(username, case.organization_id, conn))
