"""The storage facade the workflow service and the CLI talk to."""

from __future__ import annotations

from .cases import Cases
from .database import Database
from .definitions import DefinitionVersions
from .directory import Directory


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
