"""One database and everything a front end asks of it.

A front end opens the application once (a CLI run, a web worker), establishes the acting
principal the way its medium allows (``principal``), and calls the operations of the use-case
modules (``cases``, ``people``, ``directory``, ``definitions``, ``calendar``, ``audit``,
``reports``, ``screening``, ``installation``), each of which checks access through
``access`` and returns plain data for the front end to render.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from memberflow.app.access import Access
from memberflow.app.principal import Principal, from_declared, from_login

if TYPE_CHECKING:
    from memberflow.app.audit import Audit
    from memberflow.app.calendar import CalendarOperations
    from memberflow.app.cases import Cases
    from memberflow.app.definitions import Definitions
    from memberflow.app.directory import DirectoryOperations
    from memberflow.app.installation import Installation
    from memberflow.app.people import People
    from memberflow.app.reports import ReportOperations
    from memberflow.app.screening import ScreeningOperations
    from memberflow.app.service import Service
    from memberflow.storage.store import Store


class Application:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.access = Access(store)

    @classmethod
    def open(cls, target: str | None, must_exist: bool = True,
             schema_current: bool = True) -> Application:
        """The database named by ``target`` (a path or URL); by default it must exist, at this
        program's schema."""
        from memberflow.storage.schema_upgrade import require_current
        from memberflow.storage.store import Store

        store = Store(target, must_exist=must_exist)
        if must_exist and schema_current:
            require_current(store.db)
        return cls(store)

    @cached_property
    def service(self) -> Service:
        from memberflow.app.service import Service

        return Service(self.store)

    def principal(self, declared: str | None) -> Principal:
        """Who is acting: on an SQLite file the user ``--actor`` names (the file is the trust
        boundary); on PostgreSQL the user the database login is linked to."""
        if self.store.db.is_sqlite:
            username = from_declared(declared)
            self.store.directory.user(username)
            return Principal(username, "--actor")
        login = self.store.directory.session_login()
        return from_login(login, self.store.directory.user_of_login(login), declared)

    def exposure_warning(self) -> str | None:
        """A warning when others can read the database file (it holds personal records)."""
        return self.store.db.readable_by_others()

    def close(self) -> None:
        self.store.close()

    # -- the use cases ----------------------------------------------------------------------
    @cached_property
    def cases(self) -> Cases:
        from memberflow.app.cases import Cases

        return Cases(self)

    @cached_property
    def people(self) -> People:
        from memberflow.app.people import People

        return People(self)

    @cached_property
    def directory(self) -> DirectoryOperations:
        from memberflow.app.directory import DirectoryOperations

        return DirectoryOperations(self)

    @cached_property
    def definitions(self) -> Definitions:
        from memberflow.app.definitions import Definitions

        return Definitions(self)

    @cached_property
    def calendar(self) -> CalendarOperations:
        from memberflow.app.calendar import CalendarOperations

        return CalendarOperations(self)

    @cached_property
    def audit(self) -> Audit:
        from memberflow.app.audit import Audit

        return Audit(self)

    @cached_property
    def reports(self) -> ReportOperations:
        from memberflow.app.reports import ReportOperations

        return ReportOperations(self)

    @cached_property
    def screening(self) -> ScreeningOperations:
        from memberflow.app.screening import ScreeningOperations

        return ScreeningOperations(self)

    @cached_property
    def installation(self) -> Installation:
        from memberflow.app.installation import Installation

        return Installation(self)
