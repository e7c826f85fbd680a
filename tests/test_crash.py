"""Bulk work killed with SIGKILL half-way leaves a record that verifies, with nothing
half-written; running the same command again completes the rest without doing anything twice."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from conftest import World

from storage.audit import verify

ENTRY_POINT = Path(sys.executable).parent / "memberflow"


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
    command = [str(ENTRY_POINT), "--db", world.store.url, "--actor", "secretary", "case",
               "advance-many", "record_training", str(csv_file), "--date", f"{on:%d/%m/%Y}"]
    base = world.store.cases.count_events()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    kill_when(child, lambda: world.store.cases.count_events() > base + 3)
    done = world.store.cases.count_events() - base
    assert 3 < done < len(cases), "the run must be killed part-way"
    assert verify(world.store.db).ok  # no chain broken; every case row equals its last event

    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert f"{len(cases) - done} moved, {done} refused, 0 bad row of {len(cases)} rows" in again.stderr
    assert again.returncode == 1  # the rows moved before the kill are refused, not moved twice
    assert training_events(world) == len(cases)
    assert all(world.store.cases.load(c).state == "trained" for c in cases)
    assert verify(world.store.db).ok


def test_killed_person_import_never_leaves_a_half_imported_file(world: World, tmp_path: Path) -> None:
    rows = 3000
    people_csv = tmp_path / "people.csv"
    people_csv.write_text("full_name,birth_date,gender\n" + "".join(
        f"Nguyễn Văn {n:05d},01/01/1990,nam\n" for n in range(rows)), encoding="utf-8")
    command = [str(ENTRY_POINT), "--db", world.store.url, "--actor", "secretary", "person", "import",
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
    assert rerun.returncode == 2 and "nothing imported" in rerun.stderr
    assert len(world.store.directory.people(limit=100_000)) == before + rows
