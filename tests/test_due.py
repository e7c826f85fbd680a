"""Deadlines as officers see them: `due` lists running clocks by organization, in working days."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from conftest import ADMISSION_PATH, World

from cli import main
from workflow.dates import add_months
from workflow.workdays import default_calendar


def due_rows(db_path: Path, *args: str) -> list[dict]:
    result = CliRunner().invoke(main, ["--db", str(db_path), "due", "--format", "json", *args])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.output)


def test_due_lists_a_running_decision_deadline_in_working_days(world: World, db_path: Path) -> None:
    vote_day = world.ago(days=20)
    case_id = world.open_case(on=vote_day - timedelta(days=40))
    world.walk(case_id, ADMISSION_PATH[:3], vote_day - timedelta(days=30))
    world.step(case_id, "record_branch_vote", vote_day)
    expected = default_calendar().add_working_days(vote_day, 60)

    rows = due_rows(db_path, "--within", "200")
    row = next(r for r in rows if r["case"] == case_id)
    assert (row["move"], row["due_on"], row["organization"]) == ("decide_admission",
                                                                  expected.isoformat(), "VP")
    assert row["working_days_left"] == default_calendar().working_days_between(world.today, expected)
    assert row["overdue"] is False
    assert all(r["case"] != case_id for r in due_rows(db_path, "--within", "1"))
    assert due_rows(db_path, "--overdue") == []


def test_overdue_ceremony_is_listed_and_disappears_once_held(world: World, db_path: Path) -> None:
    start = world.ago(months=6)
    case_id = world.open_case(on=start)
    decided = world.walk(case_id, ADMISSION_PATH[:6], start)
    due = default_calendar().add_working_days(decided, 30)
    assert due < world.today
    overdue = due_rows(db_path, "--overdue")
    assert [(r["case"], r["move"], r["due_on"], r["overdue"]) for r in overdue] == [
        (case_id, "hold_ceremony", due.isoformat(), True)]
    assert overdue[0]["working_days_left"] < 0

    ceremony = decided + timedelta(days=60)
    world.step(case_id, "hold_ceremony", ceremony)
    record = world.store.cases.load(case_id)
    assert record.due_move == "record_recognition_vote"
    probation_end = add_months(ceremony, 12)
    assert record.due_on == default_calendar().add_working_days(probation_end, 30)
    assert due_rows(db_path, "--overdue") == []


def test_due_is_scoped_to_an_organization_subtree(world: World, db_path: Path) -> None:
    start = world.ago(months=6)
    case_id = world.open_case(on=start)
    world.walk(case_id, ADMISSION_PATH[:6], start)
    assert [r["case"] for r in due_rows(db_path, "--overdue", "--org", "SGD")] == [case_id]
    assert due_rows(db_path, "--overdue", "--org", "OTHER") == []
