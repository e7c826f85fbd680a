"""Bringing a database to the current schema with Alembic, and saying where it stands.

Alembic is driven from code with the caller's connection (no ``alembic.ini``), so the
same ``--db`` that every command takes is the database that is upgraded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Connection, inspect, text

from .database import Database
from .errors import Unavailable

MIGRATIONS = Path(__file__).parent / "migrations"
# The newest revision; a test checks it against the revision files.
HEAD = "0008"
BASELINE = "0001"
# Every revision this program has (a test checks them against the revision files).
REVISIONS = frozenset(path.name.split("_", 1)[0]
                      for path in (MIGRATIONS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
_NUMBERED = re.compile(r"[0-9]{4}")


@dataclass(frozen=True)
class SchemaState:
    revision: str | None  # None: an empty database
    head: str

    @property
    def current(self) -> bool:
        return self.revision == self.head


def _config(conn: Connection):  # type: ignore[no-untyped-def]
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    return config


def _revision(conn: Connection) -> str | None:
    """The memberflow revision of the database (None: empty); refuses one that is not
    memberflow's, or was made by a newer memberflow, before anything touches it."""
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" in tables:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        if revision in REVISIONS and "audit_events" in tables:
            return revision
        if _NUMBERED.fullmatch(str(revision)) and str(revision) > HEAD and "audit_events" in tables:
            raise Unavailable(f"the database was made by a newer memberflow (schema revision "
                              f"{revision}; this one knows up to {HEAD}): use that version")
        raise Unavailable(f"the database is not a memberflow database: its alembic_version "
                          f"{revision!r} is another application's (memberflow's are "
                          f"{min(REVISIONS)}–{HEAD}); check --db")
    # Made by memberflow before it used Alembic: that schema is the baseline revision.
    if "audit_events" in tables:
        return BASELINE
    if tables:
        shown = ", ".join(sorted(tables)[:3]) + (", …" if len(tables) > 3 else "")
        raise Unavailable(f"the database is not a memberflow database: it holds other tables "
                          f"({shown}); check --db, or give 'memberflow init' a new file or an "
                          "empty database")
    return None


def state(db: Database) -> SchemaState:
    with db.connect() as conn:
        return SchemaState(_revision(conn), HEAD)


def is_new(db: Database) -> bool:
    """No memberflow schema yet: a new installation (an SQLite file that does not exist is
    not created to find out)."""
    path = db.sqlite_path
    if path is not None and not path.exists():
        return True
    return state(db).revision is None


def upgrade(db: Database, to: str = HEAD) -> tuple[str | None, str]:
    """Upgrade to revision ``to`` (the newest by default) in one transaction; returns
    (revision before, revision after). Each revision's DDL runs transactionally on both
    SQLite and PostgreSQL, so a failed upgrade leaves the database as it was."""
    from alembic import command

    with db.write(unbounded=True) as conn:
        before = _revision(conn)
        config = _config(conn)
        if before == BASELINE and not inspect(conn).has_table("alembic_version"):
            command.stamp(config, BASELINE)
        command.upgrade(config, to)
        return before, to


def require_current(db: Database) -> None:
    """Refuse to work on a database whose schema is older (or newer) than this program's."""
    found = state(db)
    if found.revision is None:
        raise Unavailable("the database has no memberflow tables; run 'memberflow init'")
    if not found.current:
        raise Unavailable(f"the database schema is at revision {found.revision}, this memberflow "
                          f"needs {found.head}; run 'memberflow db upgrade' (back up first)")
