"""Auditors against real SQLite files: the database refuses edits, every kind of tampering
done with raw SQL is found and named, checkpoints pin what a chain alone cannot, replay
proves each move legal under its pinned rules, time travel, and the UTF-8 export."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import ADMISSION_PATH, AUDITOR, World
from memberflow.app.demo import run_demo
from memberflow.app.service import Service
from memberflow.cli import main
from memberflow.storage.chain import GENESIS, event_hash, utc_now
from memberflow.storage.store import Store
from memberflow.storage.verification import case_histories, verify
from memberflow.workflow.dates import format_date

EXIT_BAD_INPUT, EXIT_NOT_FOUND, EXIT_UNAVAILABLE, EXIT_AUDIT_FAILED = 2, 4, 6, 8
DROP_TRIGGERS = "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;"
COLUMNS = ("case_id", "seq", "kind", "definition_sha256", "trigger", "from_state", "to_state",
           "actor", "role", "recorded_at", "business_date", "payload", "prev_hash", "hash")
OFFICIAL_LABEL = "Đảng viên chính thức"


# -- helpers ------------------------------------------------------------------------------------
def run(db: Path, *args: str, actor: str = AUDITOR, lang: str = "en") -> Result:
    """As the auditor; in English unless a test is about the Vietnamese labels."""
    return CliRunner().invoke(main, ["--db", str(db), "--actor", actor, "--lang", lang, *args])


@contextmanager
def raw(db: Path, attacker: bool = False, foreign_keys: bool = True) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to the file, as anyone with file access has; an attacker
    first drops the append-only triggers."""
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        if attacker:
            conn.executescript(DROP_TRIGGERS)
        yield conn
        conn.commit()
    finally:
        conn.close()


def audit_rows(db: Path) -> list[tuple[Any, ...]]:
    with raw(db) as conn:
        return [tuple(row) for row in conn.execute(
            f"SELECT {', '.join(COLUMNS)} FROM audit_events ORDER BY case_id, seq")]


def events_of(conn: sqlite3.Connection, case_id: int) -> list[dict[str, Any]]:
    return [dict(row) for row in conn.execute(
        f"SELECT {', '.join(COLUMNS)} FROM audit_events WHERE case_id = ? ORDER BY seq", (case_id,))]


def event_at(conn: sqlite3.Connection, case_id: int, seq: int) -> dict[str, Any]:
    return next(e for e in events_of(conn, case_id) if e["seq"] == seq)


def reseal(conn: sqlite3.Connection, case_id: int) -> None:
    """Recompute a case's whole chain and its case row, as a careful attacker would: the
    chain is then self-consistent and only a checkpoint or replay can tell."""
    prev = GENESIS
    last: dict[str, Any] | None = None
    for event in events_of(conn, case_id):
        event["prev_hash"] = prev
        event["hash"] = event_hash(event)
        conn.execute("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE case_id = ? AND seq = ?",
                     (event["prev_hash"], event["hash"], case_id, event["seq"]))
        prev, last = event["hash"], event
    assert last is not None
    conn.execute("UPDATE cases SET seq = ?, head_hash = ?, state = ? WHERE id = ?",
                 (last["seq"], last["hash"], last["to_state"], case_id))


def edit_payload(conn: sqlite3.Connection, case_id: int, seq: int,
                 change: Callable[[dict[str, Any]], None]) -> None:
    payload = json.loads(event_at(conn, case_id, seq)["payload"])
    change(payload)
    conn.execute("UPDATE audit_events SET payload = ? WHERE case_id = ? AND seq = ?",
                 (json.dumps(payload, ensure_ascii=False), case_id, seq))


def rewind_head(conn: sqlite3.Connection, case_id: int, seq: int) -> None:
    """Point the case row at an earlier event, so a truncated chain looks whole."""
    event = event_at(conn, case_id, seq)
    conn.execute("UPDATE cases SET seq = ?, head_hash = ?, state = ? WHERE id = ?",
                 (seq, event["hash"], event["to_state"], case_id))


def delete_case(conn: sqlite3.Connection, case_id: int) -> None:
    for sql in ("DELETE FROM audit_events WHERE case_id = ?", "DELETE FROM documents WHERE case_id = ?",
                "DELETE FROM cases WHERE id = ?"):
        conn.execute(sql, (case_id,))


def breaks(report: Any) -> list[tuple[int, int | None, str]]:
    return [(b.case_id, b.seq, b.kind) for b in report.breaks]


def where(seq: int | None) -> str:
    return f"seq {seq}" if seq is not None else "case row"


@dataclass
class Bloc:
    world: World
    db: Path
    official: int  # 12 events, official member
    admitted: int  # 8 events, probationary
    members: list[int]  # the two registered members' cases, 2 events each
    other: int = 0  # a case in another grassroots organization (export tests only)

    @property
    def all_cases(self) -> list[int]:
        return sorted([self.official, self.admitted, *self.members])


@pytest.fixture
def bloc(world: World, db_path: Path) -> Bloc:
    official = world.official_case()
    admitted, _ = world.admitted_case(months_ago=6)
    with raw(db_path) as conn:
        members = [row[0] for row in conn.execute(
            "SELECT id FROM cases WHERE id NOT IN (?, ?) ORDER BY id", (official, admitted))]
    assert len(members) == 2
    return Bloc(world, db_path, official, admitted, members)


# -- append-only in the database itself -----------------------------------------------------------
@pytest.mark.parametrize("statement", [
    "UPDATE audit_events SET actor = 'someone_else' WHERE case_id = :case",
    "UPDATE audit_events SET payload = '{}' WHERE case_id = :case AND seq = 5",
    "UPDATE audit_events SET seq = seq + 100",
    "DELETE FROM audit_events WHERE case_id = :case AND seq = 12",
    "DELETE FROM audit_events",
])
def test_database_refuses_update_and_delete_of_audit_rows(bloc: Bloc, statement: str) -> None:
    before = audit_rows(bloc.db)
    with raw(bloc.db) as conn, pytest.raises(sqlite3.DatabaseError, match="append-only"):
        conn.execute(statement, {"case": bloc.official})
    assert audit_rows(bloc.db) == before
    assert len(before) == 12 + 8 + 2 + 2


def test_append_only_triggers_exist_and_appends_still_work(bloc: Bloc) -> None:
    with raw(bloc.db) as conn:
        names = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_events'")}
    assert {"audit_events_no_update", "audit_events_no_delete"} <= names
    case_id = bloc.world.open_case(on=bloc.world.ago(months=1))
    bloc.world.step(case_id, "record_training", bloc.world.ago(days=20))
    assert [row[1] for row in audit_rows(bloc.db) if row[0] == case_id] == [1, 2]


# -- verify: totals when intact ------------------------------------------------------------------
def test_intact_chains_verify_with_totals(bloc: Bloc, store: Store) -> None:
    report = verify(store.db)
    assert report.ok and report.breaks == []
    assert (report.cases, report.events) == (4, 24)
    result = run(bloc.db, "audit", "verify")
    assert result.exit_code == 0, result.output
    assert "verified 24 events in 4 cases: all chains intact" in result.stdout
    data = json.loads(run(bloc.db, "audit", "verify", "--format", "json").stdout)
    assert (data["cases"], data["events"], data["broken_cases"], data["breaks"]) == (4, 24, 0, [])
    one = run(bloc.db, "audit", "verify", "--case", str(bloc.official))
    assert one.exit_code == 0 and "verified 12 events in 1 cases: all chains intact" in one.stdout


# -- verify: each tamper kind, made with raw SQL ----------------------------------------------------
def tamper_payload(conn: sqlite3.Connection, case: int) -> None:
    # Still a legal vote: only the hash can tell the stored input was changed.
    edit_payload(conn, case, 5, lambda p: p["inputs"].update(votes_for=10))


def tamper_missing(conn: sqlite3.Connection, case: int) -> None:
    conn.execute("DELETE FROM audit_events WHERE case_id = ? AND seq = 6", (case,))


def tamper_reordered(conn: sqlite3.Connection, case: int) -> None:
    for old, new in ((4, -1), (5, 4), (-1, 5)):
        conn.execute("UPDATE audit_events SET seq = ? WHERE case_id = ? AND seq = ?", (new, case, old))


def tamper_copy_beyond_head(conn: sqlite3.Connection, case: int) -> None:
    copied = ", ".join(c for c in COLUMNS if c != "seq")
    conn.execute(f"INSERT INTO audit_events (seq, {copied}) SELECT 13, {copied} FROM audit_events "
                 "WHERE case_id = ? AND seq = 7", (case,))


def tamper_forged_middle(conn: sqlite3.Connection, case: int) -> None:
    """A row rewritten with a valid hash of its own, but chained to the wrong predecessor."""
    event = event_at(conn, case, 8)
    event.update(actor="intruder", prev_hash=event_at(conn, case, 6)["hash"])
    event["hash"] = event_hash(event)
    conn.execute("UPDATE audit_events SET actor = ?, prev_hash = ?, hash = ? WHERE case_id = ? AND seq = 8",
                 (event["actor"], event["prev_hash"], event["hash"], case))


def tamper_resealed_middle(conn: sqlite3.Connection, case: int) -> None:
    """A row rewritten and resealed on its true predecessor: the next link no longer holds."""
    event = event_at(conn, case, 8)
    event["actor"] = "intruder"
    event["hash"] = event_hash(event)
    conn.execute("UPDATE audit_events SET actor = ?, hash = ? WHERE case_id = ? AND seq = 8",
                 (event["actor"], event["hash"], case))


def tamper_head_state(conn: sqlite3.Connection, case: int) -> None:
    conn.execute("UPDATE cases SET state = 'probationary' WHERE id = ?", (case,))


def tamper_head_hash(conn: sqlite3.Connection, case: int) -> None:
    conn.execute("UPDATE cases SET head_hash = ? WHERE id = ?", (event_at(conn, case, 11)["hash"], case))


def tamper_no_events(conn: sqlite3.Connection, case: int) -> None:
    conn.execute("DELETE FROM audit_events WHERE case_id = ?", (case,))


def tamper_case_row(conn: sqlite3.Connection, case: int) -> None:
    conn.execute("DELETE FROM cases WHERE id = ?", (case,))


TAMPERS = [  # (how, first bad seq, kind, words in the detail)
    pytest.param(tamper_payload, 5, "payload changed", "hash does not match", id="payload-changed"),
    pytest.param(tamper_missing, 6, "row missing", "seq 6 is absent", id="row-missing"),
    pytest.param(tamper_reordered, 4, "rows reordered", "written as seq 5", id="rows-reordered"),
    pytest.param(tamper_copy_beyond_head, 13, "forged row", "beyond", id="forged-copy-beyond-head"),
    pytest.param(tamper_forged_middle, 8, "forged row", "prev_hash", id="forged-row-in-middle"),
    pytest.param(tamper_resealed_middle, 9, "forged row", "prev_hash", id="resealed-row-in-middle"),
    pytest.param(tamper_head_state, 12, "head mismatch", "probationary", id="head-state"),
    pytest.param(tamper_head_hash, 12, "head mismatch", "seq 12", id="head-hash"),
    pytest.param(tamper_no_events, 1, "row missing", "no audit events", id="case-without-events"),
    pytest.param(tamper_case_row, None, "case row missing", "not in the cases table",
                 id="events-without-case-row"),
]


@pytest.mark.parametrize(("tamper", "seq", "kind", "detail"), TAMPERS)
def test_each_tamper_kind_is_found_and_named(bloc: Bloc, store: Store, tamper: Any, seq: int | None,
                                             kind: str, detail: str) -> None:
    case = bloc.official
    with raw(bloc.db, attacker=True, foreign_keys=False) as conn:
        tamper(conn, case)

    report = verify(store.db)
    assert breaks(report) == [(case, seq, kind)]
    assert detail in report.breaks[0].detail
    assert (report.cases, report.events) == (4, len(audit_rows(bloc.db)))

    result = run(bloc.db, "audit", "verify")
    assert result.exit_code == EXIT_AUDIT_FAILED, result.output
    assert f"case {case} {where(seq)}: {kind}" in result.stdout
    assert "1 broken" in result.stdout and "all chains intact" not in result.stdout
    for other in bloc.all_cases:
        if other != case:
            assert f"case {other} " not in result.stdout
            clean = run(bloc.db, "audit", "verify", "--case", str(other))
            assert clean.exit_code == 0 and "all chains intact" in clean.stdout, clean.output
    data = json.loads(run(bloc.db, "audit", "verify", "--format", "json").stdout)
    assert [(b["case_id"], b["seq"], b["kind"]) for b in data["breaks"]] == [(case, seq, kind)]
    assert data["broken_cases"] == 1
    alone = run(bloc.db, "audit", "verify", "--case", str(case))
    assert alone.exit_code == EXIT_AUDIT_FAILED and f"case {case} {where(seq)}: {kind}" in alone.stdout


def test_only_the_first_bad_row_of_each_broken_case_is_reported(bloc: Bloc, store: Store) -> None:
    official, admitted, (first_member, second_member) = bloc.official, bloc.admitted, bloc.members
    with raw(bloc.db, attacker=True) as conn:
        # The official case is damaged three times over; only seq 3 is named.
        edit_payload(conn, official, 3, lambda p: p["inputs"].update(introducers=[]))
        conn.execute("DELETE FROM audit_events WHERE case_id = ? AND seq = 9", (official,))
        conn.execute("UPDATE cases SET state = 'candidate' WHERE id = ?", (official,))
        tamper_reordered(conn, admitted)
        conn.execute("UPDATE cases SET seq = 3 WHERE id = ?", (second_member,))

    report = verify(store.db)
    assert breaks(report) == [(second_member, 2, "head mismatch"), (official, 3, "payload changed"),
                              (admitted, 4, "rows reordered")]
    assert (report.cases, report.events) == (4, 23)
    result = run(bloc.db, "audit", "verify")
    assert result.exit_code == EXIT_AUDIT_FAILED
    lines = [line for line in result.stdout.splitlines() if line.startswith("case ")]
    assert len(lines) == 3
    assert f"case {first_member} " not in result.stdout
    assert "verified 23 events in 4 cases: 3 broken" in result.stdout


# -- checkpoints ---------------------------------------------------------------------------------
def take_checkpoint(db: Path, file: Path) -> str:
    result = run(db, "audit", "checkpoint", "-o", str(file))
    assert result.exit_code == 0, result.output
    assert file.exists()
    return result.stdout.split()[1]


def test_checkpoint_writes_a_file_and_stores_the_same_digest(bloc: Bloc, tmp_path: Path) -> None:
    file = tmp_path / "outside" / "checkpoint.txt"
    file.parent.mkdir()
    result = run(bloc.db, "audit", "checkpoint", "-o", str(file))
    assert result.exit_code == 0, result.output
    digest = result.stdout.split()[1]
    assert len(digest) == 64 and int(digest, 16) >= 0
    assert "over 4 cases, 24 events" in result.stdout and str(file) in result.stdout
    assert digest in file.read_text(encoding="utf-8")
    with raw(bloc.db) as conn:
        stored = [tuple(row) for row in conn.execute("SELECT digest, cases, events FROM audit_checkpoints")]
    assert stored == [(digest, 4, 24)]
    # Same heads, same digest; a new move changes it.
    again = take_checkpoint(bloc.db, tmp_path / "again.txt")
    assert again == digest
    case_id = bloc.world.open_case(on=bloc.world.ago(months=1))
    assert take_checkpoint(bloc.db, tmp_path / "later.txt") != digest
    assert case_id > max(bloc.all_cases)


def test_checkpoint_accepts_legitimate_growth(bloc: Bloc, tmp_path: Path) -> None:
    world = bloc.world
    growing = world.open_case(on=world.ago(months=1))
    file = tmp_path / "checkpoint.txt"
    take_checkpoint(bloc.db, file)
    world.step(growing, "record_training", world.ago(days=20))
    world.open_case(on=world.ago(days=10))
    result = run(bloc.db, "audit", "verify", "--checkpoint", str(file))
    assert result.exit_code == 0, result.output
    assert "verified 27 events in 6 cases: all chains intact" in result.stdout


def test_truncation_is_only_found_against_a_checkpoint(bloc: Bloc, tmp_path: Path) -> None:
    file = tmp_path / "checkpoint.txt"
    take_checkpoint(bloc.db, file)
    case = bloc.official
    with raw(bloc.db, attacker=True) as conn:
        conn.execute("DELETE FROM audit_events WHERE case_id = ? AND seq = 12", (case,))
        rewind_head(conn, case, 11)

    plain = run(bloc.db, "audit", "verify")
    assert plain.exit_code == 0 and "all chains intact" in plain.stdout, plain.output
    result = run(bloc.db, "audit", "verify", "--checkpoint", str(file))
    assert result.exit_code == EXIT_AUDIT_FAILED, result.output
    assert f"case {case} seq 11: truncated since checkpoint" in result.stdout
    assert [line for line in result.stdout.splitlines() if line.startswith("case ")] == \
        [line for line in result.stdout.splitlines() if line.startswith(f"case {case} ")]
    one = run(bloc.db, "audit", "verify", "--case", str(case), "--checkpoint", str(file))
    assert one.exit_code == EXIT_AUDIT_FAILED and "truncated since checkpoint" in one.stdout
    other = run(bloc.db, "audit", "verify", "--case", str(bloc.admitted), "--checkpoint", str(file))
    assert other.exit_code == 0 and "all chains intact" in other.stdout, other.output


def test_deleted_case_is_only_found_against_a_checkpoint(bloc: Bloc, tmp_path: Path) -> None:
    file = tmp_path / "checkpoint.txt"
    take_checkpoint(bloc.db, file)
    case = bloc.admitted
    with raw(bloc.db, attacker=True, foreign_keys=False) as conn:
        delete_case(conn, case)

    plain = run(bloc.db, "audit", "verify")
    assert plain.exit_code == 0, plain.output
    assert "verified 16 events in 3 cases: all chains intact" in plain.stdout
    result = run(bloc.db, "audit", "verify", "--checkpoint", str(file))
    assert result.exit_code == EXIT_AUDIT_FAILED, result.output
    assert f"case {case} case row: deleted since checkpoint" in result.stdout
    assert "1 broken" in result.stdout
    data = json.loads(run(bloc.db, "audit", "verify", "--checkpoint", str(file), "--format", "json").stdout)
    assert [(b["case_id"], b["seq"], b["kind"]) for b in data["breaks"]] == \
        [(case, None, "deleted since checkpoint")]


def test_rewritten_history_is_found_against_a_checkpoint(bloc: Bloc, tmp_path: Path) -> None:
    file = tmp_path / "checkpoint.txt"
    take_checkpoint(bloc.db, file)
    case = bloc.admitted
    with raw(bloc.db, attacker=True) as conn:
        ceremony = date.fromisoformat(event_at(conn, case, 8)["business_date"])
        conn.execute("UPDATE audit_events SET business_date = ? WHERE case_id = ? AND seq = 8",
                     ((ceremony + timedelta(days=1)).isoformat(), case))
        reseal(conn, case)

    assert run(bloc.db, "audit", "verify").exit_code == 0
    result = run(bloc.db, "audit", "verify", "--checkpoint", str(file))
    assert result.exit_code == EXIT_AUDIT_FAILED, result.output
    assert f"case {case} seq 8: rewritten since checkpoint" in result.stdout


def test_edited_checkpoint_file_is_rejected(bloc: Bloc, tmp_path: Path) -> None:
    file = tmp_path / "checkpoint.txt"
    take_checkpoint(bloc.db, file)
    case = bloc.official
    with raw(bloc.db, attacker=True) as conn:
        conn.execute("DELETE FROM audit_events WHERE case_id = ? AND seq = 12", (case,))
        rewind_head(conn, case, 11)
        head = event_at(conn, case, 11)["hash"]
    # The attacker makes the kept file agree with the truncated database.
    lines = file.read_text(encoding="utf-8").splitlines(keepends=True)
    edited = [f"{case} 11 {head}\n" if line.startswith(f"{case} ") else line for line in lines]
    assert edited != lines
    file.write_text("".join(edited), encoding="utf-8")

    result = run(bloc.db, "audit", "verify", "--checkpoint", str(file))
    assert result.exit_code == EXIT_UNAVAILABLE, result.output
    assert "does not match its own digest" in result.stderr
    assert "all chains intact" not in result.stdout


def test_checkpoint_file_that_is_not_one_is_rejected(bloc: Bloc, tmp_path: Path) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("hello\n", encoding="utf-8")
    result = run(bloc.db, "audit", "verify", "--checkpoint", str(file))
    assert result.exit_code == EXIT_UNAVAILABLE
    assert "not a memberflow checkpoint file" in result.stderr


# -- replay ----------------------------------------------------------------------------------
def test_every_case_the_demo_creates_replays_cleanly(service: Service, store: Store, db_path: Path) -> None:
    run_demo(service, echo=lambda _: None)
    with raw(db_path) as conn:
        cases = {row["id"]: row for row in conn.execute("SELECT id, state, facts FROM cases")}
        events = conn.execute("SELECT count(*) FROM audit_events").fetchone()[0]
        triggers = {row[0] for row in conn.execute("SELECT DISTINCT trigger FROM audit_events")}
    # The demo is varied enough for "every case replays" to mean something.
    assert {"official_member", "probationary", "rejected", "struck_off",
            "application_withdrawn"} <= {row["state"] for row in cases.values()}
    assert {"record_failed_branch_vote", "renew_training", "register_existing_member"} <= triggers

    replayed = 0
    for case_id, history in case_histories(store.db):
        result = service.replayer().replay(case_id, history)
        assert result.ok, (case_id, result.divergence)
        assert len(result.steps) == len(history)
        assert result.state == cases[case_id]["state"]
        assert json.loads(json.dumps(result.facts, default=str)) == json.loads(cases[case_id]["facts"])
        replayed += 1
    assert replayed == len(cases)

    result = run(db_path, "audit", "replay", "--all", actor="kiemtoan")  # the demo's auditor
    assert result.exit_code == 0, result.output
    assert f"replayed {events} events in {len(cases)} cases: all legal under their rules" in result.stdout
    data = json.loads(run(db_path, "audit", "replay", "--all", "--format", "json",
                          actor="kiemtoan").stdout)
    assert (data["cases"], data["events"], data["divergent"]) == (len(cases), events, [])


def test_replay_prints_the_step_by_step_path(bloc: Bloc) -> None:
    case = bloc.admitted
    with raw(bloc.db) as conn:
        history = events_of(conn, case)
    expected = [[str(e["seq"]), format_date(date.fromisoformat(e["business_date"])), e["trigger"],
                 e["from_state"] or "-", e["to_state"], e["actor"], e["role"]] for e in history]
    assert [row[2] for row in expected] == ["open", *ADMISSION_PATH]

    result = run(bloc.db, "audit", "replay", str(case))
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines() if line[:1].isdigit()]
    assert rows == expected
    assert result.stdout.splitlines()[-1] == f"case {case}: replay matches the record"
    assert re.fullmatch(r"\d{2}/\d{2}/\d{4}", expected[1][1])
    assert expected[3][2:5] == ["verify_background", "dossier_prepared", "background_verified"]

    data = json.loads(run(bloc.db, "audit", "replay", str(case), "--format", "json").stdout)
    assert data["ok"] is True and data["divergence"] is None
    keys = ["seq", "business_date", "trigger", "from", "to", "actor", "role"]
    assert [[str(step[k]) for k in keys] for step in data["steps"]] == expected


def test_replay_needs_a_case_or_all(bloc: Bloc) -> None:
    assert run(bloc.db, "audit", "replay").exit_code == EXIT_BAD_INPUT
    both = run(bloc.db, "audit", "replay", str(bloc.official), "--all")
    assert both.exit_code == EXIT_BAD_INPUT


def lower_branch_vote(conn: sqlite3.Connection, case: int) -> int:
    seq = next(e["seq"] for e in events_of(conn, case) if e["trigger"] == "record_branch_vote")
    edit_payload(conn, case, seq, lambda p: p["inputs"].update(votes_for=6, votes_eligible=10))
    return seq


@pytest.mark.parametrize("resealed", [False, True], ids=["hash-left-broken", "chain-resealed"])
def test_replay_reports_a_history_made_illegal_by_an_edited_input(bloc: Bloc, store: Store,
                                                                  resealed: bool) -> None:
    case = bloc.admitted
    with raw(bloc.db, attacker=True) as conn:
        seq = lower_branch_vote(conn, case)
        if resealed:
            reseal(conn, case)
    assert seq == 5

    # The chain: payload changed, unless the attacker resealed it — replay tells either way.
    expected = [] if resealed else [(case, seq, "payload changed")]
    assert breaks(verify(store.db)) == expected

    result = run(bloc.db, "audit", "replay", str(case))
    assert result.exit_code == EXIT_AUDIT_FAILED, result.output
    assert f"DIVERGES at seq {seq} (record_branch_vote)" in result.stdout
    assert "6 of 10" in result.stdout and "2/3" in result.stdout
    assert "replay matches" not in result.stdout
    data = json.loads(run(bloc.db, "audit", "replay", str(case), "--format", "json").stdout)
    assert data["ok"] is False and data["divergence"].startswith(f"seq {seq} (record_branch_vote)")
    assert [step["seq"] for step in data["steps"]] == [1, 2, 3, 4]

    every = run(bloc.db, "audit", "replay", "--all")
    assert every.exit_code == EXIT_AUDIT_FAILED
    assert [line for line in every.stdout.splitlines() if "DIVERGES" in line] == \
        [f"case {case}: DIVERGES at {data['divergence']}"]
    assert "replayed 24 events in 4 cases: 1 diverge" in every.stdout
    for other in bloc.all_cases:
        if other != case:
            assert run(bloc.db, "audit", "replay", str(other)).exit_code == 0


def test_replay_reports_a_recorded_state_the_rules_do_not_lead_to(bloc: Bloc, store: Store) -> None:
    case = bloc.admitted
    with raw(bloc.db, attacker=True) as conn:
        conn.execute("UPDATE audit_events SET to_state = 'committee_voted' WHERE case_id = ? AND seq = 5",
                     (case,))
        conn.execute("UPDATE audit_events SET from_state = 'committee_voted' WHERE case_id = ? AND seq = 6",
                     (case,))
        reseal(conn, case)
    assert verify(store.db).ok

    result = run(bloc.db, "audit", "replay", str(case))
    assert result.exit_code == EXIT_AUDIT_FAILED, result.output
    assert ("DIVERGES at seq 5 (record_branch_vote): the rules lead to branch_voted, "
            "but committee_voted was recorded") in result.stdout


def test_replay_reports_a_move_from_a_state_the_case_was_not_in(bloc: Bloc) -> None:
    case = bloc.admitted
    with raw(bloc.db, attacker=True) as conn:
        # The verification step is removed and the chain resealed around the gap.
        conn.execute("DELETE FROM audit_events WHERE case_id = ? AND seq = 4", (case,))
        for seq in range(5, 9):
            conn.execute("UPDATE audit_events SET seq = ? WHERE case_id = ? AND seq = ?",
                         (seq - 1, case, seq))
        reseal(conn, case)
    assert run(bloc.db, "audit", "verify").exit_code == 0
    result = run(bloc.db, "audit", "replay", str(case))
    assert result.exit_code == EXIT_AUDIT_FAILED, result.output
    assert "DIVERGES at seq 4 (record_branch_vote): recorded from background_verified, " \
        "but the replayed case is in dossier_prepared" in result.stdout


@pytest.mark.parametrize("payload", ["not json", "[]"])
def test_replay_reports_an_unreadable_payload_as_a_divergence(bloc: Bloc, payload: str) -> None:
    case = bloc.admitted
    with raw(bloc.db, attacker=True) as conn:
        conn.execute("UPDATE audit_events SET payload = ? WHERE case_id = ? AND seq = 5", (payload, case))
    result = run(bloc.db, "audit", "replay", "--all")
    assert result.exit_code == EXIT_AUDIT_FAILED, result.output
    assert f"case {case}: DIVERGES at seq 5" in result.stdout
    assert "replayed 24 events in 4 cases: 1 diverge" in result.stdout


def test_replay_reports_an_unknown_definition_version_as_a_divergence(bloc: Bloc) -> None:
    case = bloc.admitted
    with raw(bloc.db, attacker=True) as conn:
        conn.execute("UPDATE audit_events SET definition_sha256 = ? WHERE case_id = ? AND seq = 5",
                     ("f" * 64, case))
        reseal(conn, case)
    assert run(bloc.db, "audit", "verify").exit_code == 0
    result = run(bloc.db, "audit", "replay", "--all")
    assert result.exit_code == EXIT_AUDIT_FAILED, result.output
    assert f"case {case}: DIVERGES at seq 5" in result.stdout


# -- time travel ---------------------------------------------------------------------------------
def show(db: Path, case: int, *args: str) -> dict[str, Any]:
    result = run(db, "case", "show", str(case), *args, "--format", "json", lang="vi")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_case_as_of_a_business_date_and_as_recorded_at_a_time(world: World, db_path: Path) -> None:
    start = world.ago(months=6)
    case = world.open_case(on=start)
    vote_index = ADMISSION_PATH.index("record_branch_vote")
    vote_day = world.walk(case, ADMISSION_PATH[:vote_index + 1], start)
    live_after_vote = show(db_path, case)
    known_after_vote = utc_now()
    world.walk(case, ADMISSION_PATH[vote_index + 1:], vote_day + timedelta(days=10))
    assert show(db_path, case)["state"] == "probationary"

    before = show(db_path, case, "--as-of", format_date(vote_day - timedelta(days=1)))
    assert (before["state"], before["stage"], before["events"]) == ("background_verified", "application", 4)
    assert before["deadlines"] == []

    after = show(db_path, case, "--as-of", format_date(vote_day))
    assert after["as_of"] == format_date(vote_day)
    assert (after["state"], after["stage"], after["events"]) == ("branch_voted", "application", 5)
    assert after["state"] == live_after_vote["state"] and after["stage"] == live_after_vote["stage"]
    def as_counted(deadlines: list[dict[str, Any]]) -> list[dict[str, Any]]:  # not the days left
        return [{k: v for k, v in d.items() if k not in ("working_days_left", "overdue")} for d in deadlines]

    assert as_counted(after["deadlines"]) == as_counted(live_after_vote["deadlines"])
    assert len(after["deadlines"]) == 1 and after["deadlines"][0]["move"] == "decide_admission"
    assert after["deadlines"][0]["working_days_left"] == 60  # from the day it is shown as of
    assert after["label"] == "Chi bộ đã biểu quyết đề nghị kết nạp"
    assert after["facts"]["branch_vote_date"] == vote_day.isoformat()

    iso = show(db_path, case, "--as-of", vote_day.isoformat())
    assert iso["state"] == "branch_voted"
    today = show(db_path, case, "--as-of", format_date(world.today))
    assert (today["state"], today["events"]) == ("probationary", 8)

    # What the database knew at a UTC time, whatever the business dates say.
    known = show(db_path, case, "--recorded-as-of", known_after_vote)
    assert (known["state"], known["events"]) == ("branch_voted", 5)
    assert known["deadlines"] == live_after_vote["deadlines"]
    assert known["recorded_as_of"] == known_after_vote
    both = show(db_path, case, "--recorded-as-of", known_after_vote,
                "--as-of", format_date(vote_day - timedelta(days=1)))
    assert both["state"] == "background_verified"


def test_case_as_of_before_it_existed_is_not_found_and_says_when_it_begins(
        world: World, db_path: Path) -> None:
    """Asking for a case before it existed is a not-found (exit 4) naming when it was opened
    (or first recorded), so the officer can ask again; a malformed time is bad input."""
    start = world.ago(months=3)
    case = world.open_case(on=start)
    world.step(case, "record_training", start)
    opened = show(db_path, case, "--as-of", format_date(start))
    assert opened["state"] == "trained"
    before = run(db_path, "case", "show", str(case), "--as-of", format_date(start - timedelta(days=1)))
    assert before.exit_code == EXIT_NOT_FOUND, before.output
    assert before.stderr == (f"error: case {case} was not opened yet on that day; it was opened "
                             f"on {format_date(start)}\n")
    early = run(db_path, "case", "show", str(case), "--recorded-as-of", "2000-01-01T00:00")
    assert early.exit_code == EXIT_NOT_FOUND, early.output
    first = world.store.cases.history(case)[0]["recorded_at"]
    assert f"its first event was recorded at {first} (UTC)" in early.stderr
    for args in (["--as-of", "31/02/2026"], ["--recorded-as-of", "yesterday"]):
        result = run(db_path, "case", "show", str(case), *args)
        assert result.exit_code == EXIT_BAD_INPUT, (args, result.output)
        assert result.stderr.startswith("error: ")


# -- export --------------------------------------------------------------------------------------
@pytest.fixture
def exported(bloc: Bloc) -> Bloc:
    """The bloc plus one case in another grassroots organization."""
    world = bloc.world
    person = world.add_person("Trần Thị Ngọc Ánh")
    on = world.ago(months=2)
    case = world.service.open_case("outsider", person, "OTHER-CB", "membership", on)
    world.step(case, "record_training", on + timedelta(days=3), actor="outsider")
    bloc.other = case
    return bloc


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def keys(rows: list[dict[str, Any]]) -> list[tuple[int, int]]:
    return [(int(row["case_id"]), int(row["seq"])) for row in rows]


def test_export_csv_streams_every_event_with_vietnamese_labels(exported: Bloc) -> None:
    result = run(exported.db, "audit", "export", "--format", "csv", lang="vi")
    assert result.exit_code == 0, result.output
    rows = csv_rows(result.stdout)
    stored = audit_rows(exported.db)
    assert keys(rows) == [(row[0], row[1]) for row in stored]
    assert [row["hash"] for row in rows] == [row[13] for row in stored]
    last = next(r for r in rows if int(r["case_id"]) == exported.official and r["seq"] == "12")
    assert (last["to_state"], last["to_label"]) == ("official_member", OFFICIAL_LABEL)
    assert last["organization"] == "VP"
    verified = next(r for r in rows if r["trigger"] == "verify_background")
    assert json.loads(verified["inputs"]) == {"verification_conclusion": "Lý lịch rõ ràng"}
    other = [r for r in rows if r["organization"] == "OTHER-CB"]
    assert [r["to_label"] for r in other] == ["Quần chúng ưu tú được giới thiệu",
                                              "Đã học lớp nhận thức về Đảng"]
    english = csv_rows(run(exported.db, "audit", "export", "--lang", "en").stdout)
    assert OFFICIAL_LABEL not in {r["to_label"] for r in english} and len(english) == len(rows)


def test_export_jsonl_keeps_utf8_and_matches_the_record(exported: Bloc) -> None:
    result = run(exported.db, "audit", "export", "--format", "jsonl", lang="vi")
    assert result.exit_code == 0, result.output
    assert OFFICIAL_LABEL in result.stdout and "\\u" not in result.stdout
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    stored = audit_rows(exported.db)
    assert keys(lines) == [(row[0], row[1]) for row in stored]
    for line, row in zip(lines, stored, strict=True):
        assert (line["trigger"], line["to_state"], line["prev_hash"], line["hash"]) == \
            (row[4], row[6], row[12], row[13])
        assert line["business_date"] == row[10]
        assert json.loads(line["inputs"]) == json.loads(row[11]).get("inputs", {})
    assert {line["to_label"] for line in lines} >= {OFFICIAL_LABEL, "Đảng viên dự bị"}


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_export_to_a_file_is_utf8(exported: Bloc, tmp_path: Path, fmt: str) -> None:
    file = tmp_path / f"audit.{fmt}"
    result = run(exported.db, "audit", "export", "--format", fmt, "-o", str(file), lang="vi")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    data = file.read_bytes()
    assert OFFICIAL_LABEL.encode("utf-8") in data
    written = data.decode("utf-8")
    streamed = run(exported.db, "audit", "export", "--format", fmt, lang="vi").stdout
    if fmt == "csv":
        assert csv_rows(written) == csv_rows(streamed)
        assert len(csv_rows(written)) == len(audit_rows(exported.db))
    else:
        assert written.splitlines() == streamed.splitlines()
        assert len(written.splitlines()) == len(audit_rows(exported.db))


def test_export_filters_narrow_the_rows(exported: Bloc) -> None:
    stored = audit_rows(exported.db)
    other_case = exported.other

    def export(*args: str) -> list[tuple[int, int]]:
        result = run(exported.db, "audit", "export", "--format", "jsonl", *args)
        assert result.exit_code == 0, result.output
        return keys([json.loads(line) for line in result.stdout.splitlines()])

    assert export("--case", str(exported.official)) == [(exported.official, n) for n in range(1, 13)]
    assert export("--case", str(other_case)) == [(other_case, 1), (other_case, 2)]

    since = date.fromisoformat(next(r[10] for r in stored if r[0] == exported.admitted and r[1] == 5))
    later = [(r[0], r[1]) for r in stored if r[10] >= since.isoformat()]
    assert 0 < len(later) < len(stored)
    assert export("--since", format_date(since)) == later
    assert export("--since", since.isoformat()) == later

    assert export("--org", "OTHER") == [(other_case, 1), (other_case, 2)]
    assert export("--org", "OTHER-CB") == [(other_case, 1), (other_case, 2)]
    vp = [(r[0], r[1]) for r in stored if r[0] != other_case]
    assert export("--org", "SGD") == vp
    assert export("--org", "TU") == [(r[0], r[1]) for r in stored]
    assert export("--org", "VP", "--since", format_date(since)) == [k for k in later if k in vp]
    assert export("--org", "OTHER", "--case", str(exported.official)) == []

    csv_result = run(exported.db, "audit", "export", "--format", "csv", "--org", "OTHER")
    assert keys(csv_rows(csv_result.stdout)) == [(other_case, 1), (other_case, 2)]
    assert run(exported.db, "audit", "export", "--since", "tomorrow").exit_code == EXIT_BAD_INPUT


def test_verify_of_a_case_that_does_not_exist_is_not_found(world: World, db_path: Path) -> None:
    world.open_case()
    result = run(db_path, "audit", "verify", "--case", "999")
    assert result.exit_code == 4
    assert "case 999 has no record" in result.stderr
