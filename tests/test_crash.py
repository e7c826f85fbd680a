"""Bulk work interrupted half-way — killed with SIGKILL, or stopped by a storage failure (the
database busy past its timeout, the file-size limit reached) — leaves a record that verifies,
with nothing half-written; it has reported every row it committed (a stopped run also says
where it stopped and how many rows it committed); running the same command again completes
the rest without doing anything twice, even for moves that leave the case where it is."""

from __future__ import annotations

import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import World, acting
from interruptions import storage_fails_during
from memberflow.storage.verification import verify

ENTRY_POINT = Path(sys.executable).parent / "memberflow"
EXIT_OK, EXIT_UNAVAILABLE = 0, 6
FAILED_VOTE = "record_failed_branch_vote"
CHILD_ENV = {k: v for k, v in os.environ.items()
             if k not in ("MEMBERFLOW_DEBUG", "MEMBERFLOW_DB", "MEMBERFLOW_ACTOR")}
RERUN = "run the file again to continue (rows already done are recognised)"


def kill_when(child: subprocess.Popen[bytes], ready: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready() and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)


def training_events(world: World) -> int:
    return sum(1 for r in world.store.cases.listing(limit=100_000)
               for e in world.store.cases.history(r["id"]) if e["trigger"] == "record_training")


def test_killed_advance_many_resumes_without_moving_a_case_twice(world: World, tmp_path: Path) -> None:
    on = world.ago(months=19)
    cases = [world.open_case() for _ in range(150)]
    csv_file = tmp_path / "training.csv"
    csv_file.write_text("case,certificate_date,doc:CN-NTVĐ\n" + "".join(
        f"{c},{on:%d/%m/%Y},GCN-{c}\n" for c in cases), encoding="utf-8")
    command = [str(ENTRY_POINT), *acting(world.store.url, "secretary"), "case",
               "advance-many", "record_training", str(csv_file), "--date", f"{on:%d/%m/%Y}"]
    base = world.store.cases.count_events()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kill_when(child, lambda: world.store.cases.count_events() > base + 3)
    done = world.store.cases.count_events() - base
    assert 3 < done < len(cases), "the run must be killed part-way"
    assert verify(world.store.db).ok  # no chain broken; every case row equals its last event

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.stderr == f"{len(cases) - done} moved, {done} already done, 0 refused, 0 bad row " \
                           f"of {len(cases)} rows\n"
    assert again.returncode == 0  # the rows moved before the kill are already done, not moved twice
    assert training_events(world) == len(cases)
    assert all(world.store.cases.load(c).state == "trained" for c in cases)
    assert verify(world.store.db).ok


def test_killed_person_import_never_leaves_a_half_imported_file(world: World, tmp_path: Path) -> None:
    rows = 3000
    people_csv = tmp_path / "people.csv"
    people_csv.write_text("full_name,birth_date,gender\n" + "".join(
        f"Nguyễn Văn {n:05d},01/01/1990,nam\n" for n in range(rows)), encoding="utf-8")
    command = [str(ENTRY_POINT), *acting(world.store.url, "secretary"), "person", "import",
               str(people_csv)]
    before = len(world.store.directory.people(limit=100_000))
    for delay in (0.6, 1.0, 1.4):  # start-up, checking the rows, or inserting them
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        started = time.monotonic()
        kill_when(child, lambda started=started, delay=delay: time.monotonic() - started > delay)
        now = len(world.store.directory.people(limit=100_000))
        assert now in (before, before + rows), f"{now - before} of {rows} people imported"
        if now == before + rows:
            break
    else:
        finish = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert finish.returncode == 0, finish.stderr
    assert len(world.store.directory.people(limit=100_000)) == before + rows
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.startswith(f"already done: all {rows} people of {people_csv} are registered")
    assert len(world.store.directory.people(limit=100_000)) == before + rows


# -- advance-many: rows reported as they commit, and recognised when the file is run again -------
def votes_file(tmp_path: Path, cases: list[int]) -> Path:
    """Failed branch votes (5 of 10): moves that leave the case where it is."""
    path = tmp_path / "votes.csv"
    path.write_text("case,votes_for,votes_eligible,doc:6-KNĐ\n" + "".join(
        f"{c},5,10,BB-{c}\n" for c in cases), encoding="utf-8")
    return path


def advance_many(db: str, csv_file: Path, on: str, *extra: str) -> list[str]:
    return [str(ENTRY_POINT), *acting(db, "secretary"), "case", "advance-many",
            FAILED_VOTE, str(csv_file), "--date", on, "--format", "json", *extra]


def votes_recorded(world: World, cases: list[int]) -> list[int]:
    return [sum(e["trigger"] == FAILED_VOTE for e in world.store.cases.history(c)) for c in cases]


def streamed_rows(stdout: str) -> list[dict[str, Any]]:
    """The row objects a run printed, also when it was killed before closing the array."""
    return [json.loads(line.lstrip(", ")) for line in stdout.splitlines() if line.strip() not in "[]"]


def test_killed_advance_many_of_moves_that_stay_in_state_records_none_twice(
        world: World, tmp_path: Path) -> None:
    """A failed vote leaves the case where it is, so only the rows' request keys tell the
    rerun which votes the killed run recorded. Every row the killed run printed had been
    committed, and at most the one being printed when it died was committed unprinted."""
    cases = world.verified_cases(120)
    on = f"{world.ago(months=16):%d/%m/%Y}"
    command = advance_many(world.store.url, votes_file(tmp_path, cases), on)
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=CHILD_ENV)
    kill_when(child, lambda: sum(votes_recorded(world, cases[:8])) >= 4)
    recorded = votes_recorded(world, cases)
    done = sum(recorded)
    assert 3 < done < len(cases), "the run must be killed part-way"
    printed = streamed_rows(child.stdout.read().decode("utf-8"))  # type: ignore[union-attr]
    assert [r["case_id"] for r in printed] == cases[:len(printed)]
    assert all(r["outcome"] == "moved" for r in printed)
    assert done - 1 <= len(printed) <= done
    assert verify(world.store.db).ok

    again = subprocess.run(command, capture_output=True, text=True, timeout=300, env=CHILD_ENV)
    assert again.returncode == EXIT_OK, again.stderr
    assert again.stderr == f"{len(cases) - done} moved, {done} already done, 0 refused, 0 bad row " \
                           f"of {len(cases)} rows\n"
    rows = json.loads(again.stdout)
    assert [r["outcome"] for r in rows] == ["already done"] * done + ["moved"] * (len(cases) - done)
    assert votes_recorded(world, cases) == [1] * len(cases)
    assert verify(world.store.db).ok


def test_storage_failure_mid_file_stops_reports_every_committed_row_and_a_rerun_finishes(
        world: World, db_url: str, tmp_path: Path) -> None:
    """A real second connection holds what the run needs past its timeout mid-file: the run
    stops (exit 6) having printed every row it committed, says which row stopped it and how
    many it committed; the rerun reports those as already done and does the rest."""
    cases = world.verified_cases(150)
    on = f"{world.ago(months=16):%d/%m/%Y}"
    csv_file = votes_file(tmp_path, cases)
    world.store.close()
    with storage_fails_during(db_url, FAILED_VOTE, 10, cases[10]) as url:
        stopped = subprocess.run(advance_many(url, csv_file, on), capture_output=True, text=True,
                                 timeout=120, env=CHILD_ENV)
    assert stopped.returncode == EXIT_UNAVAILABLE, stopped.stderr
    committed = sum(votes_recorded(world, cases))
    assert 10 <= committed < len(cases)
    if db_url.startswith("postgresql"):
        assert committed == 10  # the row whose case was locked stopped the run
    rows = json.loads(stopped.stdout)  # the array is closed: still one JSON document
    assert [(r["case_id"], r["outcome"]) for r in rows] == [(c, "moved") for c in cases[:committed]]
    assert votes_recorded(world, cases) == [1] * committed + [0] * (len(cases) - committed)
    stop = stopped.stderr.splitlines()[-1]
    assert stop.startswith(f"error: stopped at row {committed + 2} (case {cases[committed]}): ")
    assert stop.endswith(f"; {committed} row(s) moved and committed before it; {RERUN}")
    assert ("database is busy" if db_url.startswith("/") else
            f"case {cases[committed]} is being changed by another session") in stop
    assert verify(world.store.db).ok

    again = subprocess.run(advance_many(db_url, csv_file, on), capture_output=True, text=True,
                           timeout=300, env=CHILD_ENV)
    assert again.returncode == EXIT_OK, again.stderr
    assert [r["outcome"] for r in json.loads(again.stdout)] == \
        ["already done"] * committed + ["moved"] * (len(cases) - committed)
    assert votes_recorded(world, cases) == [1] * len(cases)
    assert verify(world.store.db).ok


def test_file_size_limit_mid_file_stops_reports_every_committed_row_and_a_rerun_finishes(
        world: World, db_path: Path, tmp_path: Path) -> None:
    """The run's process may not grow a file past 160 kB (``ulimit -f``): its writes to the
    SQLite write-ahead log fail part-way (an I/O error; SIGXFSZ is ignored, as Python does).
    Same promise as a busy database: every committed row printed, where and how many said,
    nothing written twice by the rerun."""
    cases = world.verified_cases(40)
    on = f"{world.ago(months=16):%d/%m/%Y}"
    csv_file = votes_file(tmp_path, cases)
    world.store.close()
    with sqlite3.connect(db_path) as conn:  # an empty log: the limit is reached part-way
        assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (160_000, 160_000))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    stopped = subprocess.run(advance_many(str(db_path), csv_file, on), capture_output=True,
                             text=True, timeout=120, env=CHILD_ENV, preexec_fn=limited)
    assert stopped.returncode == EXIT_UNAVAILABLE, stopped.stderr
    committed = sum(votes_recorded(world, cases))
    assert 0 < committed < len(cases)
    assert [(r["case_id"], r["outcome"]) for r in json.loads(stopped.stdout)] == \
        [(c, "moved") for c in cases[:committed]]
    stop = stopped.stderr.splitlines()[-1]
    assert stop.startswith(f"error: stopped at row {committed + 2} (case {cases[committed]}): "
                           "database error: ")
    assert stop.endswith(f"; {committed} row(s) moved and committed before it; {RERUN}")
    assert verify(world.store.db).ok

    again = subprocess.run(advance_many(str(db_path), csv_file, on), capture_output=True,
                           text=True, timeout=300, env=CHILD_ENV)
    assert again.returncode == EXIT_OK, again.stderr
    assert votes_recorded(world, cases) == [1] * len(cases)
    assert verify(world.store.db).ok
