"""What one run of ``memberflow`` knows: the database, who acts, the language."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from memberflow.app.application import Application
    from memberflow.app.principal import Principal


@dataclass
class Invocation:
    db: str | None
    actor: str | None
    lang: str = "vi"
    _application: Application | None = field(default=None, repr=False)

    def application(self, must_exist: bool = True, schema_current: bool = True) -> Application:
        """The database named by --db; by default it must exist at this program's schema."""
        from memberflow.app.application import Application

        if self._application is None:
            self._application = Application.open(self.db, must_exist, schema_current)
            if must_exist and schema_current:
                self.warn_if_exposed()
        return self._application

    def warn_if_exposed(self) -> None:
        """One line on stderr when others can read the database's file."""
        exposed = self.application(schema_current=False).exposure_warning()
        if exposed:
            click.echo(exposed, err=True)

    def principal(self) -> Principal:
        """Who acts: ``--actor`` on an SQLite file, the database login on PostgreSQL."""
        return self.application().principal(self.actor)


pass_invocation = click.make_pass_decorator(Invocation)
