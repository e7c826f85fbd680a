"""Deadlines as officers see them: `due` lists running clocks by organization, in working days."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from click.testing import CliRunner
from conftest import ADMISSION_PATH, AUDITOR, World
from memberflow.cli import main
from memberflow.workflow.dates import add_months
from memberflow.workflow.workdays import default_calendar


def due_rows(db_path: Path, *args: str) -> list[dict]:
    result = CliRunner().invoke(main, ["--db", str(db_path), "--actor", AUDITOR, "--lang", "vi", "due",
                                       "--format", "json", *args])
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


def test_due_table_is_grouped_by_organization_fewest_days_first(world: World, db_path: Path) -> None:
    world.store.directory.add_organization("THPT", "Chi bộ Trường THPT", "branch", "SGD")
    world.store.directory.add_user("bithu.khac", "Bí thư khác")
    world.store.directory.grant("bithu.khac", "branch_secretary", "THPT")
    late, soon = world.ago(months=6), world.ago(months=4)
    cases = []
    for start in (soon, late):
        case_id = world.open_case(on=start)
        world.walk(case_id, ADMISSION_PATH[:6], start)
        cases.append(case_id)
    other = world.service.open_case("bithu.khac", world.add_person("Người ở chi bộ khác"),
                                    "THPT", "membership", late)
    for trigger in ADMISSION_PATH[:6]:
        actor = {"record_training": "bithu.khac", "prepare_dossier": "bithu.khac",
                 "record_branch_vote": "bithu.khac"}.get(trigger)
        world.step(other, trigger, late + timedelta(days=10 * ADMISSION_PATH.index(trigger)),
                   **({"actor": actor} if actor else {}))
    rows = due_rows(db_path, "--overdue")
    assert [r["organization"] for r in rows] == ["THPT", "VP", "VP"]
    assert [r["case"] for r in rows[1:]] == [cases[1], cases[0]]  # the longer overdue first
    assert rows[1]["working_days_left"] < rows[2]["working_days_left"]
    assert rows[0]["label"] == "Đã có quyết định kết nạp"

    table = CliRunner().invoke(main, ["--db", str(db_path), "--actor", AUDITOR, "--lang", "en", "due",
                                      "--overdue"])
    assert table.exit_code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0] == "THPT — Chi bộ Trường THPT: 1 deadline(s), 1 overdue"
    header = lines.index("VP — Chi bộ Văn phòng: 2 deadline(s), 2 overdue")
    assert [line.split()[0] for line in lines[header + 3:header + 5]] == [str(cases[1]), str(cases[0])]
    assert "Admission decided" in lines[header + 3]
