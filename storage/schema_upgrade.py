"""Bringing a database to the current schema with Alembic, and saying where it stands.

Alembic is driven from code with the caller's connection (no ``alembic.ini``), so the
same ``--db`` that every command takes is the database that is upgraded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memberflow.errors import Unavailable
from memberflow.i18n import _
from memberflow.storage.database import Database
from sqlalchemy import Column, Connection, Integer, String, inspect, text
from sqlalchemy.types import TypeEngine

SCRIPTS = Path(__file__).parent / "schema_revisions"
# The newest revision; a test checks it against the revision files.
HEAD = "0009"
BASELINE = "0001"
# Every revision this program has (a test checks them against the revision files).
REVISIONS = frozenset(path.name.split("_", 1)[0]
                      for path in (SCRIPTS / "versions").glob("[0-9][0-9][0-9][0-9]_*.py"))
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
    config.set_main_option("script_location", str(SCRIPTS))
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
            raise Unavailable(_("the database was made by a newer memberflow (schema revision {revision}; "
                                "this one knows up to {head}): use that version").format(
                                  revision=revision, head=HEAD))
        raise Unavailable(_("the database is not a memberflow database: its alembic_version {revision!r} "
                            "is another application's (memberflow's are {min}–{head}); check --db").format(
                              revision=revision, min=min(REVISIONS), head=HEAD))
    # Made by memberflow before it used Alembic: that schema is the baseline revision.
    if "audit_events" in tables:
        return BASELINE
    if tables:
        shown = ", ".join(sorted(tables)[:3]) + (", …" if len(tables) > 3 else "")
        raise Unavailable(_("the database is not a memberflow database: it holds other tables ({shown}); "
                            "check --db, or give 'memberflow init' a new file or an empty database").format(
                              shown=shown))
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
            _complete_baseline(conn)
            command.stamp(config, BASELINE)
        if before is not None:
            _add_late_columns(conn, before)
        command.upgrade(config, to)
        return before, to


def require_current(db: Database) -> None:
    """Refuse to work on a database whose schema is older (or newer) than this program's."""
    found = state(db)
    if found.revision is None:
        raise Unavailable(_("the database has no memberflow tables; run 'memberflow init'"))
    if not found.current:
        raise Unavailable(_("the database schema is at revision {revision}, this memberflow needs {head}; "
                            "run 'memberflow db upgrade' (back up first)").format(
                              revision=found.revision, head=found.head))


# Columns a revision gained after it had landed: 9235d39 added approved_by and approved_at to
# 0002, first landed in a61a9e8, so databases upgraded to 0002 between the two lack them.
LATE_COLUMNS: dict[str, list[tuple[str, str, TypeEngine[Any]]]] = {
    "0002": [("definition_versions", "approved_by", String(64)),
             ("definition_versions", "approved_at", String(32))],
}


def _applied(conn: Connection, current: str, revision: str) -> bool:
    """Whether ``revision`` is ``current`` or one of its ancestors."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_config(conn))
    return any(r.revision == revision for r in script.iterate_revisions(current, "base"))


def _add_late_columns(conn: Connection, current: str) -> None:
    """Add what an applied revision gained after landing, where the database lacks it."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    ops = Operations(MigrationContext.configure(conn))
    for revision, columns in LATE_COLUMNS.items():
        if not _applied(conn, current, revision):
            continue
        for table, column, kind in columns:
            if column not in {c["name"] for c in inspect(conn).get_columns(table)}:
                ops.add_column(table, Column(column, kind))


def _complete_baseline(conn: Connection) -> None:
    """Bring a database made before Alembic up to the baseline revision before stamping it.

    The earliest releases made less than 0001 describes: before 6691326 no ``installation``
    table and a NOT NULL ``role_grants.organization_id`` (no installation-wide grants); before
    936b648 no ``audit_checkpoints`` and no append-only triggers. Their audit_events keep
    their extra ``id`` key, which nothing reads. What is added is written out here, as 0001
    writes it, so it stays what the baseline was.
    """
    from alembic.migration import MigrationContext
    from alembic.operations import Operations
    from alembic.script import ScriptDirectory

    ops = Operations(MigrationContext.configure(conn))
    tables = set(inspect(conn).get_table_names())
    if "installation" not in tables:
        ops.create_table("installation", Column("key", String(64), primary_key=True),
                         Column("value", String(500), nullable=False))
    if "audit_checkpoints" not in tables:
        ops.create_table("audit_checkpoints", Column("id", Integer, primary_key=True),
                         Column("created_at", String(32), nullable=False),
                         Column("cases", Integer, nullable=False),
                         Column("events", Integer, nullable=False),
                         Column("digest", String(64), nullable=False))
    grants = {c["name"]: c for c in inspect(conn).get_columns("role_grants")}
    if not grants["organization_id"]["nullable"]:
        with ops.batch_alter_table("role_grants") as batch:
            batch.alter_column("organization_id", existing_type=Integer, nullable=True)
    baseline = ScriptDirectory.from_config(_config(conn)).get_revision(BASELINE)
    for statement in baseline.module.APPEND_ONLY.get(conn.dialect.name, []):
        conn.execute(text(statement))
