"""The national-scale generator makes a database memberflow accepts as its own: chains that
verify and replay, case rows that match their last event, and the everyday commands answer.
(Speed is measured by ``python -m bench``, never asserted here.)"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bench import memory, scale

ENTRY_POINT = Path(sys.executable).parent / "memberflow"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> scale.Generated:
    path = tmp_path_factory.mktemp("scale") / "national.db"
    return scale.generate(path, 300, cases=250, years=2, echo=lambda _: None)


def run(path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ENTRY_POINT), "--db", str(path), "--actor", scale.READER, *args],
                          capture_output=True,
                          text=True)


def test_generated_set_has_the_requested_people_and_cases(generated: scale.Generated) -> None:
    assert (generated.people, generated.cases) == (300, 250)
    assert generated.events > 250


def test_every_chain_verifies_and_replays(generated: scale.Generated) -> None:
    verified = run(generated.path, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "all chains intact" in verified.stdout
    replayed = run(generated.path, "audit", "replay", "--all")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr


def test_case_rows_match_their_last_event(generated: scale.Generated) -> None:
    conn = sqlite3.connect(generated.path)
    mismatched = conn.execute(
        "SELECT count(*) FROM cases c JOIN audit_events e ON e.case_id = c.id AND e.seq = c.seq "
        "WHERE e.to_state != c.state OR e.hash != c.head_hash").fetchone()[0]
    conn.close()
    assert mismatched == 0


def test_the_latency_commands_answer(generated: scale.Generated) -> None:
    for command in scale.commands(generated.path, generated.sample).values():
        done = subprocess.run(command, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    shown = run(generated.path, "case", "show", str(generated.sample["case"]))
    assert f"{generated.sample['case']}" in shown.stdout


def test_memory_run_moves_every_trained_case(tmp_path: Path) -> None:
    path = tmp_path / "memory.db"
    scale.generate(path, 40, echo=lambda _: None, stop="record_training", copies=40, years=1)
    found = memory.advance_all(path)
    assert found["moves"] >= 40
    assert found["peak_rss_mb"] > 0
