"""`memberflow report`: admissions in a year, membership on a date, step durations and late
moves — exact figures from cases built on known dates, through the CLI, on both backends."""

from __future__ import annotations

import csv
import io
import json
import statistics
from datetime import date, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import ADMISSION_PATH, AUDITOR, MEMBERSHIP, RECOGNITION_PATH, World, acting
from memberflow.cli import main
from memberflow.workflow.definition import Deadline
from memberflow.workflow.loader import load_definition
from memberflow.workflow.reports import (
    ClockStart,
    WorkdayCounter,
    admission_triggers,
    clock_start,
    main_path,
    median,
)
from memberflow.workflow.workdays import default_calendar


def run_report(db_url: str, *args: str, actor: str = AUDITOR) -> Result:
    """Reports as the auditor (every organization), in the program's default language: labels
    from the definition in Vietnamese."""
    return CliRunner().invoke(main, [*acting(db_url, actor), "--lang", "vi", "report", *args])


def report_json(db_url: str, *args: str) -> dict[str, Any]:
    result = run_report(db_url, *args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.output)


def report_csv(db_url: str, *args: str) -> list[dict[str, str]]:
    result = run_report(db_url, *args, "--format", "csv")
    assert result.exit_code == 0, result.stderr
    return list(csv.DictReader(io.StringIO(result.output)))


def add_branch(world: World, code: str = "GD", name: str = "Chi bộ Giáo viên") -> str:
    """A second branch under SGD whose cases the world's officers can move."""
    world.store.directory.add_organization(code, name, "branch", "SGD")
    world.store.directory.grant("secretary", "branch_secretary", code)
    return code


def open_at(world: World, org: str, on: date, **person: Any) -> int:
    return world.service.open_case("secretary", world.add_person(**person), org, "membership", on)


def step_on(world: World, case_id: int, steps: list[tuple[str, date]]) -> None:
    for trigger, on in steps:
        world.step(case_id, trigger, on)


# -- admissions -------------------------------------------------------------------------------------
@pytest.fixture
def admissions_world(world: World) -> tuple[World, int]:
    """Three people admitted last year (two women; one Tày, Buddhist, not in the Youth
    Union), one admitted on 31/12 the year before, one rejected and one still waiting for its
    ceremony last year; plus the world's two members registered from paper records."""
    year = world.today.year - 1
    gd = add_branch(world)
    admitted = [
        open_at(world, "VP", date(year, 2, 2), name="Trần Thị Lan", gender="female"),
        open_at(world, gd, date(year, 3, 2), name="Hoàng Văn Sơn", gender="male", ethnicity="Tày",
                religion="Phật giáo", youth_union=False),
        open_at(world, "VP", date(year, 4, 1), name="Lê Thị Mai", gender="female"),
    ]
    for case_id, month in zip(admitted, (2, 3, 4), strict=True):
        world.walk(case_id, ADMISSION_PATH, date(year, month, 3))
    earlier = open_at(world, "VP", date(year - 1, 10, 1), name="Phạm Thị Hà")
    world.walk(earlier, ADMISSION_PATH[:6], date(year - 1, 10, 1))
    world.step(earlier, "hold_ceremony", date(year - 1, 12, 31))
    rejected = open_at(world, "VP", date(year, 5, 4), name="Vũ Văn Nam", gender="male")
    world.walk(rejected, ADMISSION_PATH[:2], date(year, 5, 4))
    world.step(rejected, "reject_application", date(year, 6, 1))
    waiting = open_at(world, gd, date(year, 9, 1), name="Đỗ Thị Thu")
    world.walk(waiting, ADMISSION_PATH[:6], date(year, 9, 1))
    return world, year


def test_admissions_of_a_year_count_ceremonies_only(admissions_world: tuple[World, int],
                                                    db_url: str) -> None:
    _, year = admissions_world
    found = report_json(db_url, "admissions", "--year", str(year))
    assert found["total"] == {"admitted": 3, "women": 2, "ethnic_minority": 1, "religious": 1,
                              "youth_union_members": 2}
    assert found["rows"] == [found["total"]]
    assert found["admission_moves"] == ["hold_ceremony"]
    assert report_json(db_url, "admissions", "--year", str(year - 1))["total"]["admitted"] == 1

    table = run_report(db_url, "admissions", "--year", str(year))
    assert table.exit_code == 0, table.stderr
    assert table.output.splitlines()[0].startswith(
        f"Kết nạp đảng viên năm {year} (theo ngày: Tổ chức lễ kết nạp): 3, trong đó nữ 2")


def test_admissions_breakdowns(admissions_world: tuple[World, int], db_url: str) -> None:
    _, year = admissions_world
    by_org_gender = report_json(db_url, "admissions", "--year", str(year), "--by", "org,gender")
    assert [(r["organization"], r["organization_name"], r["gender"], r["admitted"], r["women"])
            for r in by_org_gender["rows"]] == [
        ("GD", "Chi bộ Giáo viên", "nam", 1, 0), ("VP", "Chi bộ Văn phòng", "nữ", 2, 2)]
    assert by_org_gender["by"] == ["org", "gender"]

    by_gender = report_json(db_url, "admissions", "--year", str(year), "--by", "gender",
                            "--lang", "en")
    assert [(r["gender"], r["admitted"]) for r in by_gender["rows"]] == [("female", 2), ("male", 1)]
    by_union = report_json(db_url, "admissions", "--year", str(year), "--by", "youth_union")
    assert [(r["youth_union"], r["admitted"]) for r in by_union["rows"]] == [("không", 1), ("có", 2)]
    by_faith = report_json(db_url, "admissions", "--year", str(year), "--by", "ethnicity, religion")
    assert [(r["ethnicity"], r["religion"], r["admitted"], r["religious"])
            for r in by_faith["rows"]] == [("Kinh", "Không", 2, 0), ("Tày", "Phật giáo", 1, 1)]

    assert report_json(db_url, "admissions", "--year", str(year), "--org", "GD")["total"]["admitted"] == 1
    assert report_json(db_url, "admissions", "--year", str(year), "--org", "SGD")["total"]["admitted"] == 3
    empty = report_json(db_url, "admissions", "--year", str(year), "--org", "OTHER", "--by", "org")
    assert (empty["rows"], empty["total"]["admitted"]) == ([], 0)

    table = run_report(db_url, "admissions", "--year", str(year), "--by", "org")
    assert table.exit_code == 0, table.stderr
    assert table.output.splitlines()[-1].split()[:3] == ["Tổng", "cộng", "-"]


def test_admissions_csv_keeps_vietnamese_labels(admissions_world: tuple[World, int],
                                                db_url: str) -> None:
    _, year = admissions_world
    rows = report_csv(db_url, "admissions", "--year", str(year), "--by", "org,gender,ethnicity")
    assert list(rows[0]) == ["organization", "organization_name", "gender", "ethnicity", "admitted",
                             "women", "ethnic_minority", "religious", "youth_union_members"]
    assert [(r["organization_name"], r["gender"], r["ethnicity"], r["admitted"]) for r in rows] == [
        ("Chi bộ Giáo viên", "nam", "Tày", "1"), ("Chi bộ Văn phòng", "nữ", "Kinh", "2")]


# -- membership -------------------------------------------------------------------------------------
def membership_rows(db_url: str, day: date, *args: str) -> tuple[dict[str, Any], list[tuple]]:
    found = report_json(db_url, "membership", "--as-of", day.strftime("%d/%m/%Y"), *args)
    return found, [(r["organization"], r["stage"], r["state"], r["cases"]) for r in found["rows"]]


def test_membership_as_of_before_and_after_a_move(world: World, db_url: str) -> None:
    year = world.today.year - 1
    gd = add_branch(world)
    applicant = open_at(world, "VP", date(year, 3, 2))
    decided = world.walk(applicant, ADMISSION_PATH[:6], date(year, 3, 2))
    ceremony = date(year, 5, 4)
    assert decided < ceremony
    world.step(applicant, "hold_ceremony", ceremony)
    rejected = open_at(world, "VP", date(year, 3, 2), name="Vũ Văn Nam", gender="male")
    world.step(rejected, "reject_application", date(year, 3, 20))
    open_at(world, gd, date(year, 4, 1), name="Đỗ Thị Thu")

    found, rows = membership_rows(db_url, ceremony - timedelta(days=1))
    assert rows == [("GD", "application", None, 1), ("VP", "application", None, 1),
                    ("VP", "application", "rejected", 1), ("VP", "official", None, 2)]
    assert (found["members"], found["official"], found["probationary"], found["applying"]) == (2, 2, 0, 2)

    found, rows = membership_rows(db_url, ceremony)
    assert rows == [("GD", "application", None, 1), ("VP", "application", "rejected", 1),
                    ("VP", "probation", None, 1), ("VP", "official", None, 2)]
    assert (found["members"], found["probationary"], found["applying"]) == (3, 1, 1)
    assert [(t["organization"], t["stage"], t["state"], t["cases"]) for t in found["totals"]] == [
        ("Tổng cộng", "application", None, 1), ("Tổng cộng", "application", "rejected", 1),
        ("Tổng cộng", "probation", None, 1), ("Tổng cộng", "official", None, 2)]

    _, rows = membership_rows(db_url, date(year, 3, 19))
    assert rows == [("VP", "application", None, 2), ("VP", "official", None, 2)]
    _, rows = membership_rows(db_url, date(year, 3, 1))  # nothing opened yet but the members
    assert rows == [("VP", "official", None, 2)]
    _, rows = membership_rows(db_url, world.ago(months=61))
    assert rows == []
    found, rows = membership_rows(db_url, ceremony, "--org", "GD")
    assert (rows, found["members"], found["organization"]) == ([("GD", "application", None, 1)], 0, "GD")
    _, rows = membership_rows(db_url, ceremony - timedelta(days=1), "--org", "VP")
    assert rows == [("VP", "application", None, 1), ("VP", "application", "rejected", 1),
                    ("VP", "official", None, 2)]


def test_membership_csv_and_labels(world: World, db_url: str) -> None:
    case_id = world.open_case(on=world.ago(months=2))
    world.step(case_id, "reject_application", world.ago(months=1))
    rows = report_csv(db_url, "membership")
    assert [(r["organization_name"], r["stage"], r["state"], r["label"], r["cases"]) for r in rows] == [
        ("Chi bộ Văn phòng", "application", "rejected", "Không được kết nạp", "1"),
        ("Chi bộ Văn phòng", "official", "", "Đảng viên chính thức", "2")]
    english = report_json(db_url, "membership", "--lang", "en")
    assert [r["label"] for r in english["rows"]] == ["Not admitted", "Official members"]
    table = run_report(db_url, "membership")
    assert table.output.splitlines()[0].startswith("Đảng viên và hồ sơ ngày ")
    assert "2 đảng viên (chính thức 2, dự bị 0); 0 quần chúng" in table.output


# -- durations --------------------------------------------------------------------------------------
def expected_durations(world: World, walks: list[list[tuple[str, date]]],
                       year: int | None) -> dict[str, list[int]]:
    """Working days from the previous state change to each main-path move, per trigger."""
    calendar = world.service.engine.calendar
    found: dict[str, list[int]] = {}
    for walk in walks:
        entered = walk[0][1]
        for trigger, on in walk[1:]:
            if trigger.startswith("extend_"):
                continue  # stays in its state: the clock of the step keeps running
            if year is None or on.year == year:
                found.setdefault(trigger, []).append(calendar.working_days_between(entered, on))
            entered = on
    return found


def test_durations_medians_and_late_moves(world: World, db_url: str) -> None:
    year = world.today.year - 1
    calendar = world.service.engine.calendar
    walks: list[list[tuple[str, date]]] = []

    def build(opened: date, steps: list[tuple[str, date]]) -> None:
        case_id = open_at(world, "VP", opened, name=f"Người {len(walks)}")
        step_on(world, case_id, steps)
        walks.append([("open", opened), *steps])

    def evenly(start: date, gap: int, triggers: list[str]) -> list[tuple[str, date]]:
        return [(t, start + timedelta(days=gap * n)) for n, t in enumerate(triggers, start=1)]

    for n, gap in enumerate((7, 14, 21)):  # three on time, every step a different length
        start = date(year, 2, 2) + timedelta(days=n)
        build(start, evenly(start, gap, ADMISSION_PATH))
    start = date(year, 2, 9)  # ceremony 60 calendar days after the decision: late
    steps = evenly(start, 7, ADMISSION_PATH[:6])
    build(start, [*steps, ("hold_ceremony", steps[-1][1] + timedelta(days=60))])
    for extended, after in ((False, 61), (False, 60), (True, 89)):  # the decision 60 (+30) wd after the vote
        start = date(year, 3, 2)
        steps = evenly(start, 7, ADMISSION_PATH[:5])
        vote = steps[3][1]
        if extended:
            steps.append(("extend_admission_deadline", steps[-1][1] + timedelta(days=3)))
        steps.append(("decide_admission", calendar.add_working_days(vote, after)))
        build(start, steps)
    start = date(year - 1, 12, 1)  # trained the year before, the dossier in January
    build(start, [("record_training", date(year - 1, 12, 20)), ("prepare_dossier", date(year, 1, 12))])

    found = report_json(db_url, "durations", "--year", str(year))
    assert found["year"] == year and found["unit"] == "working_days"
    rows = {r["move"]: r for r in found["rows"]}
    assert list(rows) == ADMISSION_PATH + RECOGNITION_PATH
    expected = expected_durations(world, walks, year)
    for trigger in ADMISSION_PATH:
        assert rows[trigger]["moves"] == len(expected[trigger]), trigger
        assert rows[trigger]["median_working_days"] == statistics.median(expected[trigger]), trigger
    assert rows["record_training"]["moves"] == 7  # the December one is in the year before
    assert rows["prepare_dossier"]["moves"] == 8  # ...but its dossier, counted from December, is not
    assert rows["decide_admission"]["moves"] == 7
    assert {m: r["late"] for m, r in rows.items()} == {
        "record_training": None, "prepare_dossier": None, "verify_background": None,
        "record_branch_vote": None, "record_committee_vote": None, "decide_admission": 1,
        "hold_ceremony": 1, "complete_probation": None, "record_recognition_vote": 0,
        "record_recognition_committee_vote": None, "recognize_official": 0}
    probation = rows["complete_probation"]
    assert (probation["moves"], probation["median_working_days"]) == (0, None)
    assert rows["decide_admission"]["deadline"] == "60 ngày làm việc (+30) từ branch_vote_date"

    everything = {r["move"]: r for r in report_json(db_url, "durations")["rows"]}
    all_years = expected_durations(world, walks, None)
    assert everything["record_training"]["moves"] == 8
    assert everything["record_training"]["median_working_days"] == statistics.median(
        all_years["record_training"])
    assert report_json(db_url, "durations", "--year", str(year - 2))["rows"][0]["moves"] == 0


def test_durations_of_a_recognized_member_and_csv(world: World, db_url: str) -> None:
    case_id = world.official_case()
    history = [(e["trigger"], e["business_date"]) for e in world.store.cases.history(case_id)]
    rows = report_csv(db_url, "durations", "--lang", "en")
    assert [r["move"] for r in rows] == ADMISSION_PATH + RECOGNITION_PATH
    calendar = world.service.engine.calendar
    for (_, before), (trigger, on), row in zip(history[:-1], history[1:], rows, strict=True):
        assert (row["move"], row["moves"]) == (trigger, "1")
        assert row["median_working_days"] == str(calendar.working_days_between(before, on))
    assert rows[0]["label"] == "Record the awareness course certificate"
    assert rows[7]["late"] == "" and rows[8]["late"] == "0"
    elsewhere = report_json(db_url, "durations", "--org", "OTHER")["rows"]
    assert [(r["moves"], r["late"]) for r in elsewhere][7:9] == [(0, None), (0, 0)]
    assert sum(r["moves"] for r in elsewhere) == 0
    whole = report_json(db_url, "durations")["rows"]
    assert report_json(db_url, "durations", "--org", "SGD")["rows"] == whole
    vietnamese = report_csv(db_url, "durations")
    assert vietnamese[8]["label"] == "Chi bộ xét công nhận đảng viên chính thức"
    assert vietnamese[8]["deadline"] == "30 ngày làm việc từ probation_end"


# -- bad arguments ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("args", "code", "message"), [
    (["admissions", "--year", "1800"], 2, "error: --year 1800 is before 1900"),
    (["admissions", "--year", "20x6"], 2, "error: --year '20x6' is not a year"),
    (["admissions", "--year", "2999"], 2, "error: --year 2999 is in the future"),
    (["admissions", "--year", "2025", "--by", "org,age"], 2, "error: unknown --by key 'age'; keys: org,"),
    (["admissions", "--year", "2025", "--org", "NOWHERE"], 4, "error: organization NOWHERE not found"),
    (["membership", "--as-of", "31/02/2025"], 2, "error: --as-of '31/02/2025' does not exist"),
    (["membership", "--org", "NOWHERE"], 4, "error: organization NOWHERE not found"),
    (["durations", "--year", "1800"], 2, "error: --year 1800 is before 1900"),
    (["durations", "--org", "NOWHERE"], 4, "error: organization NOWHERE not found"),
])
def test_bad_arguments_are_one_line_errors(world: World, db_url: str, args: list[str], code: int,
                                           message: str) -> None:
    result = run_report(db_url, *args, "--lang", "en")
    assert result.exit_code == code, (result.output, result.stderr)
    assert result.stderr.startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


# -- rules, without a database ----------------------------------------------------------------------
def test_what_counts_is_read_from_the_definition() -> None:
    definition = load_definition(MEMBERSHIP)
    assert [t.trigger for t in main_path(definition)] == ADMISSION_PATH + RECOGNITION_PATH
    assert admission_triggers([definition]) == ["hold_ceremony"]
    starts = {t.trigger: clock_start(definition, t.deadline) for t in definition.transitions
              if t.deadline}
    assert starts == {"decide_admission": ClockStart(("record_branch_vote",), 0),
                      "hold_ceremony": ClockStart(("decide_admission",), 0),
                      "record_recognition_vote": ClockStart(("hold_ceremony",), 12),
                      "recognize_official": ClockStart(("record_recognition_vote",), 0)}
    assert clock_start(definition, Deadline(5, "working_days", "state_entered_on")) == ClockStart(None, 0)
    assert clock_start(definition, Deadline(5, "working_days", "certificate_date")) is None  # an input


def test_median_of_a_histogram() -> None:
    assert median({}) is None
    assert median({4: 1}) == 4
    assert median({1: 1, 2: 1}) == 1.5
    assert median({1: 2, 10: 1}) == 1
    assert median({3: 2, 8: 2}) == 5.5
    assert median({0: 3, 7: 1, 9: 4}) == 8


def test_workday_counter_matches_the_calendar() -> None:
    calendar = default_calendar()
    counter = WorkdayCounter(calendar)
    days = [date(2026, 2, 10) + timedelta(days=n * 3) for n in range(12)] + [date(2025, 12, 28)]
    for start in days:
        for end in days:
            assert counter.between(start, end) == calendar.working_days_between(start, end)
    for start in [*days, date(2019, 1, 31), date(2030, 4, 27)]:
        for count in (0, 1, 5, 30, 60, 90, 400):
            assert counter.add_working_days(start, count) == calendar.add_working_days(start, count)
