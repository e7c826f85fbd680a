"""Databases made by earlier releases upgrade and keep working, through the real CLI.

Each fixture in tests/fixtures/old_databases was made by the code of an earlier landed commit
running its own demo (build.sh there rebuilds them; README.md says which and why): SQLite
files, and for three of them the same built on PostgreSQL, kept as pg_dump scripts restored
here into a fresh schema. Each is upgraded with `memberflow db upgrade`, then a running case
pinned to the old definition version is shown and moved, the chains are verified, every case
is replayed and the yearly admissions report is run — each step a subprocess of the
installed `memberflow`.
"""

from __future__ import annotations

import gzip
import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from conftest import acting, postgresql_schema
from memberflow.storage.chain import json_row_digest, row_digest
from memberflow.storage.database import Database
from memberflow.storage.schema import metadata
from memberflow.storage.schema_upgrade import HEAD, upgrade
from memberflow.storage.verification import verify
from memberflow.workflow.dates import format_date
from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.exc import DBAPIError

ENTRY_POINT = Path(sys.executable).parent / "memberflow"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "old_databases"
SQLITE_FILES = sorted(FIXTURES.glob("*.db.gz"))
POSTGRESQL_DUMPS = sorted(FIXTURES.glob("*.postgresql.sql.gz"))
DUMPED_SCHEMA = "memberflow_fixture"  # the schema the dumps were taken from (build.sh)
# Made before revision 0001 existed: their audit_events keep the `id` key they were made with.
BEFORE_BASELINE = {"pre-alembic-669a767", "pre-alembic-705c3a9", "pre-alembic-936b648"}
CANDIDATE, SECRETARY = 18, "bithu.thpt"  # every demo leaves case 18 a candidate at SGD-THPT
PROPOSED, COMMITTEE = 1, "danguy.sgd"  # 0004-8b75627: case 1 has a removal proposal open
AUDITOR = "kiemtoan"  # reads the record; the demos made it from 4ddbbff on
WITHOUT_AUDITOR = {"pre-alembic-669a767"}  # nor an administrator: both added as a user would


def name_of(path: Path) -> str:
    return path.name.split(".")[0]


def fixture_id(path: Path) -> str:
    return f"{'postgresql' if path in POSTGRESQL_DUMPS else 'sqlite'}-{name_of(path)}"


@dataclass(frozen=True)
class OldDatabase:
    name: str
    target: str  # what --db takes: the SQLite file, or a URL into a fresh PostgreSQL schema


@dataclass(frozen=True)
class Before:
    """What the database holds before today's code touches it, read with plain SQL."""

    revision: str
    events: int
    last_day: date  # the latest business date recorded: a valid date for one more move
    pinned_sha: str  # the definition version case 18 is pinned to
    year: int  # the latest year with admissions, and how many there were
    admitted: int
    administrators: int  # none before 6691326, which brought installation-wide grants


def connected(target: str) -> Connection:
    url = target if "://" in target else f"sqlite:///{target}"
    return create_engine(url).connect()


def read_before(target: str) -> Before:
    with connected(target) as conn:
        revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() \
            if inspect(conn).has_table("alembic_version") else "0001"
        events, last_day = conn.execute(
            text("SELECT count(*), max(business_date) FROM audit_events")).one()
        pinned = conn.execute(text("SELECT d.sha256 FROM cases c JOIN definition_versions d ON "
                                   f"d.id = c.definition_id WHERE c.id = {CANDIDATE}")).scalar_one()
        admissions = [date.fromisoformat(str(day)) for day in conn.execute(text(
            "SELECT business_date FROM audit_events WHERE trigger = 'hold_ceremony' "
            "AND kind = 'move'")).scalars()]
        administrators = conn.execute(text(
            "SELECT count(*) FROM role_grants WHERE role = 'administrator'")).scalar_one()
    year = max(admissions).year
    return Before(revision, events, date.fromisoformat(str(last_day)), pinned, year,
                  sum(day.year == year for day in admissions), administrators)


@pytest.fixture(params=SQLITE_FILES + POSTGRESQL_DUMPS, ids=fixture_id)
def old_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OldDatabase]:
    packed: Path = request.param
    if packed in SQLITE_FILES:
        path = tmp_path / f"{name_of(packed)}.db"
        path.write_bytes(gzip.decompress(packed.read_bytes()))
        yield OldDatabase(name_of(packed), str(path))
        return
    with postgresql_schema() as url:
        schema = url.rsplit("%3D", 1)[1]
        script = gzip.decompress(packed.read_bytes()).decode("utf-8")
        script = script.replace(f"CREATE SCHEMA {DUMPED_SCHEMA};", "").replace(DUMPED_SCHEMA, schema)
        with connected(url) as conn:
            conn.exec_driver_sql(script)
            conn.commit()
        yield OldDatabase(name_of(packed), url)


def memberflow(db: OldDatabase, *args: str, actor: str | None = None,
               code: int = 0) -> subprocess.CompletedProcess[str]:
    command = [str(ENTRY_POINT), *acting(db.target, actor), "--lang", "en"]
    result = subprocess.run([*command, *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == code, f"memberflow {' '.join(args)}: exit {result.returncode}\n" \
        f"{result.stdout}\n{result.stderr}"
    return result


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(result.stdout)


def test_the_fixtures_cover_every_schema_a_landed_commit_made(tmp_path: Path) -> None:
    revisions = set()
    for packed in SQLITE_FILES:
        path = tmp_path / f"{name_of(packed)}.db"
        path.write_bytes(gzip.decompress(packed.read_bytes()))
        revisions.add(read_before(str(path)).revision)
    assert revisions == {"0001", "0002", "0003", "0004", "0006"}
    assert len(SQLITE_FILES) == 9
    assert {name_of(p) for p in POSTGRESQL_DUMPS} == \
        {"pre-alembic-669a767", "0002-fc715f8", "0004-8b75627"}


def test_an_old_database_upgrades_and_keeps_working(old_db: OldDatabase) -> None:
    before = read_before(old_db.target)
    day = format_date(before.last_day)

    upgraded = memberflow(old_db, "db", "upgrade")
    assert upgraded.stdout.splitlines()[0] == (
        f"schema upgraded from revision {before.revision} to {HEAD}" if before.revision != HEAD
        else f"schema already at revision {HEAD}; nothing to do")

    if old_db.name in WITHOUT_AUDITOR:
        memberflow(old_db, "init", "--admin", "quantri")
        memberflow(old_db, "user", "add", AUDITOR, "--name", "Lương Thị Diệu", actor="quantri")
        memberflow(old_db, "user", "grant", AUDITOR, "auditor", actor="quantri")
    available = as_json(memberflow(old_db, "case", "available", str(CANDIDATE), "--date", day,
                                   "--format", "json", actor=SECRETARY))
    assert next(m for m in available if m["move"] == "record_training")["status"] == "ready"
    moved = memberflow(old_db, "case", "advance", str(CANDIDATE), "record_training", "--date", day,
                       "-i", f"certificate_date={day}", "-d", "CN-NTVĐ=CN-2026/01", actor=SECRETARY)
    assert re.search(r"^to +trained$", moved.stdout, re.MULTILINE), moved.stdout
    shown = as_json(memberflow(old_db, "case", "show", str(CANDIDATE), "--format", "json", actor=AUDITOR))
    assert (shown["state"], shown["facts"]["certificate_date"]) == ("trained", before.last_day.isoformat())
    assert shown["definition"] == f"membership ({before.pinned_sha[:12]})"
    moves = 1
    if old_db.name == "0004-8b75627":
        moves += dismiss_under_the_pending_guard(old_db, day)

    verified = memberflow(old_db, "audit", "verify", actor=AUDITOR)
    assert f"verified {before.events + moves} events" in verified.stdout
    assert "all chains intact" in verified.stdout
    replayed = memberflow(old_db, "audit", "replay", "--all", actor=AUDITOR)
    assert f"replayed {before.events + moves} events" in replayed.stdout
    assert "all legal under their rules" in replayed.stdout
    report = as_json(memberflow(old_db, "report", "admissions", "--year", str(before.year),
                                "--format", "json", actor=AUDITOR))
    assert report["total"]["admitted"] == before.admitted > 0


def dismiss_under_the_pending_guard(db: OldDatabase, day: str) -> int:
    """The release of issue 13: its dismissal move is guarded by `pending`. Today's code makes
    it on the proposal left open, then refuses a second one, in the guard's own words."""
    memberflow(db, "case", "advance", str(PROPOSED), "dismiss_removal_proposal", "--date", day,
               "-i", "reason=Đã sinh hoạt trở lại", actor=COMMITTEE)
    again = memberflow(db, "case", "advance", str(PROPOSED), "dismiss_removal_proposal", "--date",
                       day, "-i", "reason=Lần nữa", actor=COMMITTEE, code=1)
    assert f"nothing to close: removal_proposed_on was already closed by removal_dismissed_on {day}" \
        in again.stderr
    return 1


def test_an_old_database_upgraded_has_todays_schema(old_db: OldDatabase) -> None:
    """Columns a revision gained after landing, and what the earliest releases made short of the
    baseline (tables, a nullable grant, the append-only triggers), are there after upgrade."""
    db = Database(old_db.target)
    try:
        assert upgrade(db)[1] == HEAD
        assert upgrade(db) == (HEAD, HEAD)
    finally:
        db.dispose()
    with connected(old_db.target) as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
        found = {_described(d) for d in differences}
        # audit_events keyed by `id` (PostgreSQL also reflects its UNIQUE (case_id, seq)).
        keyed_by_id = {("remove_column", "audit_events", "id"),
                       ("remove_constraint", "audit_events", "case_id, seq")}
        if old_db.name in BEFORE_BASELINE:
            assert ("remove_column", "audit_events", "id") in found and found <= keyed_by_id
        else:
            assert found == set()
        with pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text("UPDATE audit_events SET actor = 'someone' WHERE seq = 1"))
    if old_db.name not in BEFORE_BASELINE:
        return
    # What those releases lacked, used: installation settings, installation-wide grants,
    # checkpoints; 669a767 had no administrator, and init --admin is how one is made.
    if read_before(old_db.target).administrators == 0:
        memberflow(old_db, "init", "--admin", "quantri", "--admin-name", "Quản trị")
    memberflow(old_db, "user", "add", "kiemtoan2", "--name", "Kiểm toán", actor="quantri")
    memberflow(old_db, "user", "grant", "kiemtoan2", "auditor", actor="quantri")
    memberflow(old_db, "audit", "checkpoint", actor="kiemtoan2")
    memberflow(old_db, "definition", "require-approval", "on", actor="quantri")


def _described(difference: Any) -> Any:
    """A difference compare_metadata reports, as a hashable description."""
    if difference[0] == "remove_column":
        return difference[0], difference[2], difference[3].name
    if difference[0] == "remove_constraint":
        constraint = difference[1]
        return difference[0], constraint.table.name, ", ".join(c.name for c in constraint.columns)
    return repr(difference)


# -- chains sealed with the first digest ------------------------------------------------------
FIRST_DIGEST = FIXTURES / "pre-alembic-669a767.db.gz"
CHAIN_COLUMNS = ("case_id, seq, kind, definition_sha256, trigger, from_state, to_state, actor, role, "
                 "recorded_at, business_date, payload, prev_hash, hash")
DROP_TRIGGERS = "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;"


@pytest.fixture
def first_digest_db(tmp_path: Path) -> OldDatabase:
    path = tmp_path / "first-digest.db"
    path.write_bytes(gzip.decompress(FIRST_DIGEST.read_bytes()))
    db = Database(str(path))
    upgrade(db)
    db.dispose()
    return OldDatabase(name_of(FIRST_DIGEST), str(path))


def rows_of(conn: sqlite3.Connection, case_id: int) -> list[tuple[Any, ...]]:
    return conn.execute(f"SELECT {CHAIN_COLUMNS} FROM audit_events WHERE case_id = ? ORDER BY seq",
                        (case_id,)).fetchall()


def test_a_changed_row_of_a_chain_sealed_the_first_way_is_found(first_digest_db: OldDatabase) -> None:
    conn = sqlite3.connect(first_digest_db.target)
    try:
        assert all(json_row_digest(row) == row[13] for row in rows_of(conn, 13))
        conn.executescript(DROP_TRIGGERS)
        conn.execute("UPDATE audit_events SET actor = 'someone' WHERE case_id = 13 AND seq = 3")
        conn.commit()
    finally:
        conn.close()
    report = verify(Database(first_digest_db.target), workers=1)
    assert [(b.case_id, b.seq, b.kind) for b in report.breaks] == [(13, 3, "payload changed")]


def test_a_row_sealed_the_first_way_after_a_newer_row_is_a_forgery(first_digest_db: OldDatabase) -> None:
    """Rows were sealed the first way only before c16d113, so never after a newer row."""
    day = format_date(read_before(first_digest_db.target).last_day)
    memberflow(first_digest_db, "case", "advance", str(CANDIDATE), "record_training", "--date", day,
               "-i", f"certificate_date={day}", "-d", "CN-NTVĐ=CN-2026/01", actor=SECRETARY)
    conn = sqlite3.connect(first_digest_db.target)
    try:
        *_, last = rows_of(conn, CANDIDATE)
        assert row_digest(last) == last[13]  # today's move, sealed the joined way
        forged = (CANDIDATE, last[1] + 1, "move", last[3], "withdraw_application", "trained",
                  "application_withdrawn", SECRETARY, "branch_secretary", last[9], last[10],
                  '{"inputs":{"reason":"x"}}', last[13])
        forged_hash = json_row_digest(forged)
        conn.executescript(DROP_TRIGGERS)
        conn.execute(f"INSERT INTO audit_events ({CHAIN_COLUMNS}) VALUES ({', '.join('?' * 14)})",
                     (*forged, forged_hash))
        conn.execute("UPDATE cases SET seq = ?, head_hash = ?, state = ? WHERE id = ?",
                     (forged[1], forged_hash, forged[6], CANDIDATE))
        conn.commit()
    finally:
        conn.close()
    report = verify(Database(first_digest_db.target), workers=1)
    assert [(b.case_id, b.seq, b.kind) for b in report.breaks] == \
        [(CANDIDATE, last[1] + 1, "payload changed")]
