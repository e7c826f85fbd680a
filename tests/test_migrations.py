"""Schema migrations on both databases: empty to head matches the models, an older database
with data upgrades with nothing lost, and the CLI refuses a database at an older schema."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from conftest import DEFINITIONS, login_url
from memberflow.app.demo import run_demo
from memberflow.app.service import Service
from memberflow.storage.database import Database
from memberflow.storage.schema import metadata
from memberflow.storage.schema_upgrade import BASELINE, HEAD, REVISIONS, SCRIPTS, state, upgrade
from memberflow.storage.store import Store
from memberflow.storage.verification import verify
from sqlalchemy import inspect, text
from sqlalchemy.exc import DBAPIError

ENTRY_POINT = Path(sys.executable).parent / "memberflow"
NEW_IN_0002 = {"status", "author", "comment", "approved_by", "approved_at"}
# Columns later revisions add to tables of the baseline.
LATER_COLUMNS = {"definition_versions": NEW_IN_0002, "cases": {"due_calendar"},
                 "audit_events": {"request_key"}, "users": {"db_login"},
                 "people": {"organization_id"}}


def script_head() -> str:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    return ScriptDirectory.from_config(config).get_current_head()


# Tables later revisions add: an older database has none of their rows to carry over.
AFTER_BASELINE = {"calendar_days", "overdue_flags", "assessments", "holiday_snapshots", "holiday_days"}


def baseline_columns(table: Any) -> list[Any]:
    return [c for c in table.columns if c.name not in LATER_COLUMNS.get(table.name, set())]


def rows_of(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table of the baseline, in key order, without later columns."""
    out = {}
    with db.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name in AFTER_BASELINE:
                continue
            columns = baseline_columns(table)
            keys = list(table.primary_key.columns)
            out[table.name] = [tuple(r) for r in conn.execute(
                table.select().with_only_columns(*columns).order_by(*keys))]
    return out


def test_head_constant_is_the_newest_revision_file() -> None:
    assert script_head() == HEAD


def test_empty_database_upgraded_to_head_matches_the_models(db_url: str) -> None:
    db = Database(db_url, must_exist=False)
    assert state(db).revision is None
    assert upgrade(db) == (None, HEAD)
    with db.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
    assert state(db).current
    db.dispose()


def older_database_with_demo_rows(db_url: str, tmp_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The demo's rows, made at head in a scratch SQLite file, copied into a database at 0001;
    returns them."""
    scratch = Store(str(tmp_path / "scratch.db"), must_exist=False)
    scratch.create_schema()
    service = Service(scratch)
    service.install_definitions(DEFINITIONS)
    run_demo(service, echo=lambda _: None)
    original = rows_of(scratch.db)
    scratch.close()
    assert sum(len(rows) for rows in original.values()) > 300

    db = Database(db_url, must_exist=False)
    upgrade(db, BASELINE)
    assert state(db).revision == BASELINE
    with db.connect() as conn:
        assert {c["name"] for c in inspect(conn).get_columns("definition_versions")} & NEW_IN_0002 == set()
        for table in (t for t in metadata.sorted_tables if t.name not in AFTER_BASELINE):
            names = [c.name for c in baseline_columns(table)]
            if original[table.name]:
                conn.execute(table.insert(), [dict(zip(names, row, strict=True))
                                              for row in original[table.name]])
        if conn.dialect.name == "postgresql":  # explicit ids were inserted; move the sequences on
            for table in ("organizations", "people", "users", "role_grants", "definition_versions",
                          "cases", "documents", "audit_checkpoints"):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                  f"coalesce(max(id), 1)) FROM {table}"))
    db.dispose()
    return original


def test_older_database_with_data_upgrades_with_nothing_lost(db_url: str, tmp_path: Path) -> None:
    original = older_database_with_demo_rows(db_url, tmp_path)
    db = Database(db_url)
    assert upgrade(db) == (BASELINE, HEAD)
    assert rows_of(db) == original
    with db.connect() as conn:
        statuses = conn.execute(text("SELECT DISTINCT status, author, comment FROM definition_versions"))
        assert [tuple(r) for r in statuses] == [("published", None, None)]
    assert verify(db).ok
    for statement in ("DELETE FROM audit_events", "UPDATE audit_events SET actor = 'x'"):
        with pytest.raises(DBAPIError, match="append-only"), db.engine.begin() as conn:
            conn.execute(text(statement))
    db.dispose()

    store = Store(db_url)  # the upgraded database serves the program: every case replays
    upgraded = Service(store)
    assert [is_new for _, _, is_new in upgraded.install_definitions(DEFINITIONS)] == [False]
    summary = upgraded.replay_all(workers=1)
    assert summary.cases == len(original["cases"]) and summary.divergent == []
    store.close()


def test_db_upgrade_counts_the_stored_deadlines_on_the_stored_holiday_data(db_url: str,
                                                                          tmp_path: Path) -> None:
    """Deadlines stored before revision 0008 carry no calendar version; ``db upgrade``
    counts them again on the holiday data it stores, so due and case show agree at once."""
    original = older_database_with_demo_rows(db_url, tmp_path)
    names = [c.name for c in baseline_columns(metadata.tables["cases"])]
    running = [dict(zip(names, row, strict=True)) for row in original["cases"]]
    running = [row for row in running if row["due_on"] is not None]
    assert len(running) > 5
    upgraded = run_cli(db_url, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.splitlines()[1] == \
        f"stored deadlines counted again on the calendar in force: {len(running)}, of which moved: 0"
    store = Store(db_url)
    service = Service(store)
    for row in running:
        case = store.cases.load(row["id"])
        first = service.deadlines(case)[0]
        assert (case.due_on, case.due_move) == (first.due_on, first.trigger) == \
            (row["due_on"], row["due_move"])
        assert case.due_calendar == service.engine.calendar.version(case.due_on.year)
    store.close()
    assert run_cli(db_url, "db", "upgrade").stdout.strip() == \
        f"schema already at revision {HEAD}; nothing to do"


def test_database_made_before_alembic_is_recognized_and_upgraded(db_url: str) -> None:
    db = Database(db_url, must_exist=False)
    upgrade(db, BASELINE)
    with db.connect() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    assert state(db).revision == BASELINE
    assert upgrade(db) == (BASELINE, HEAD)
    assert state(db).current
    db.dispose()


def run_cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ENTRY_POINT), "--db", db_url, *args], capture_output=True,
                          text=True, timeout=60)


def test_cli_refuses_an_older_schema_until_db_upgrade(db_url: str) -> None:
    db = Database(db_url, must_exist=False)
    upgrade(db, BASELINE)
    db.dispose()
    current = run_cli(db_url, "db", "current")
    assert current.returncode == 0
    assert current.stdout.strip() == f"revision {BASELINE}, head {HEAD}: run 'memberflow db upgrade'"

    refused = run_cli(db_url, "org", "list")
    assert refused.returncode == 6
    assert refused.stderr.strip() == (f"error: the database schema is at revision {BASELINE}, this "
                                      f"memberflow needs {HEAD}; run 'memberflow db upgrade' (back up first)")

    upgraded = run_cli(db_url, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.strip() == f"schema upgraded from revision {BASELINE} to {HEAD}"
    assert run_cli(db_url, "db", "upgrade").stdout.strip() == \
        f"schema already at revision {HEAD}; nothing to do"
    assert run_cli(db_url, "db", "current").stdout.strip() == f"revision {HEAD} (head): current"
    assert run_cli(db_url, "init", "--admin", "quantri").returncode == 0
    listed = run_cli(login_url(db_url, "quantri"), "--actor", "quantri", "org", "list")
    assert listed.returncode == 0, listed.stderr


def test_known_revisions_are_the_revision_files() -> None:
    config = Config()
    config.set_main_option("script_location", str(SCRIPTS))
    assert {s.revision for s in ScriptDirectory.from_config(config).walk_revisions()} == REVISIONS


def everything_in(db_url: str) -> Any:
    """What a command must not change: on SQLite the file's bytes and every file beside it, on
    PostgreSQL every table of the schema with its rows."""
    if not db_url.startswith("postgresql"):
        folder = Path(db_url).parent
        return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}
    db = Database(db_url)
    try:
        with db.connect() as conn:
            return {name: sorted(tuple(r) for r in conn.execute(text(f'SELECT * FROM "{name}"')))
                    for name in sorted(inspect(conn).get_table_names())}
    finally:
        db.dispose()


def make_foreign(db_url: str, revision: str | None) -> None:
    """Another application's database: its own table, and Alembic's version table if it uses
    Alembic too (made with the plain driver, as that application would)."""
    db = Database(db_url, must_exist=False)
    with db.connect() as conn:
        conn.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER)"))
        conn.execute(text("INSERT INTO invoices VALUES (1, 250000)"))
        if revision is not None:
            conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)"))
            conn.execute(text("INSERT INTO alembic_version VALUES (:r)"), {"r": revision})
    db.dispose()


COMMANDS = [["init", "--admin", "quantri"], ["db", "upgrade"], ["db", "current"], ["org", "list"],
            ["audit", "verify"]]


@pytest.mark.parametrize("revision", ["abc123", None])
def test_another_applications_database_is_told_it_is_not_memberflows(db_url: str,
                                                                     revision: str | None) -> None:
    """A database of another application (with or without its own alembic_version) is not a
    memberflow database: every command, init and db upgrade included, says so in one line
    (exit 6) and changes nothing (not even SQLite's journal mode)."""
    make_foreign(db_url, revision)
    before = everything_in(db_url)
    for command in COMMANDS:
        done = run_cli(db_url, *command)
        assert done.returncode == 6, (command, done.returncode, done.stdout, done.stderr)
        assert done.stdout == ""
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: the database is not a memberflow "
                                                       "database: "), (command, done.stderr)
        assert ("'abc123'" if revision else "invoices") in lines[0]
        assert everything_in(db_url) == before, command


def test_a_database_of_a_newer_memberflow_is_told_to_use_that_one(db_url: str) -> None:
    db = Database(db_url, must_exist=False)
    upgrade(db)
    with db.connect() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    db.dispose()
    before = everything_in(db_url)
    for command in COMMANDS:
        done = run_cli(db_url, *command)
        assert (done.returncode, done.stdout) == (6, ""), (command, done.stderr)
        assert done.stderr == (f"error: the database was made by a newer memberflow (schema "
                               f"revision 0099; this one knows up to {HEAD}): use that version\n")
        assert everything_in(db_url) == before, command
