"""Deadlines do not drift with the holidays package (issue 13, item 3): they are counted on
the holiday data stored in the database, a newer package reaches them only through an
administrator's audited ``calendar refresh``, and the calendar version names the data.

A database whose snapshot was taken with holidays 0.60 is made from the real day list 0.60
gives (``tests/data/holidays-VN-0.60.json``): 0.109, installed here, knows 02/05/2025,
31/08/2026 (with 22/08/2026 worked) and 24/11/2026, which 0.60 does not.
"""

from __future__ import annotations

import json
import re
import tomllib
from datetime import date, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import ADMISSION_PATH, AUDITOR, ROOT, World, acting
from memberflow.cli import main
from memberflow.storage.schema import cases, holiday_snapshots
from memberflow.storage.store import Store
from memberflow.workflow.dates import format_date
from memberflow.workflow.holiday_data import HolidayData, HolidayDay, generate, installed_version
from memberflow.workflow.workdays import WorkingCalendar, default_calendar, package_holidays
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

OLD = json.loads((ROOT / "tests/data/holidays-VN-0.60.json").read_text(encoding="utf-8"))
OLD_DATA = HolidayData(OLD["package_version"], OLD["first_year"], OLD["last_year"],
                       tuple(HolidayDay(date.fromisoformat(d), w, vi, en) for d, w, vi, en in OLD["days"]))
OLD_CALENDAR = WorkingCalendar(OLD_DATA)


def cli(world: World, *args: str, actor: str = "quantri") -> Result:
    return CliRunner().invoke(main, [*acting(world.store.url, actor), *args])


def take_old_snapshot(store: Store) -> None:
    """The database as a memberflow that had holidays 0.60 installed left it."""
    assert OLD_DATA.digest == OLD["sha256"]
    with store.calendar_change() as change:
        change.add_snapshot(
            {"country": "VN", "package_version": "0.60", "first_year": OLD["first_year"],
             "last_year": OLD["last_year"], "digest": OLD["sha256"], "changes": json.dumps({"years": []}),
             "created_by": "an install with holidays 0.60"},
            [{"day": d.day, "working": d.working, "name_vi": d.name_vi, "name_en": d.name_en}
             for d in OLD_DATA.days])


def old_world(world: World) -> World:
    take_old_snapshot(world.store)
    world.service = type(world.service)(world.store)
    world.store.directory.add_user("quantri", "Quản trị")
    world.store.directory.grant("quantri", "administrator", None)
    return world


def ceremony_case(world: World, decided: date) -> int:
    """A case whose ceremony is due 30 working days after the decision on ``decided``."""
    case_id = world.open_case(on=decided - timedelta(days=60))
    assert world.walk(case_id, ADMISSION_PATH[:6], decided - timedelta(days=50)) == decided
    return case_id


def shown_due(world: World, case_id: int) -> dict[str, Any]:
    result = cli(world, "case", "show", str(case_id), "--format", "json", actor=AUDITOR)
    assert result.exit_code == 0, result.output
    return next(d for d in json.loads(result.stdout)["deadlines"] if d["move"] == "hold_ceremony")


def due_rows(world: World) -> dict[int, dict[str, Any]]:
    result = cli(world, "due", "--within", "400", "--format", "json", actor=AUDITOR)
    assert result.exit_code == 0, result.output
    return {r["case"]: r for r in json.loads(result.stdout)}


def table_rows(world: World) -> dict[str, list[tuple[Any, ...]]]:
    with world.store.db.connect() as conn:
        return {"cases": [tuple(r) for r in conn.execute(select(cases).order_by(cases.c.id))],
                "snapshots": [tuple(r) for r in conn.execute(select(holiday_snapshots))]}


# The open deadlines of the refresh tests: 30 working days from a decision on these days.
ACROSS_CULTURAL_DAY = date(2026, 11, 10)  # 24/11/2026 counts in 0.109, not in 0.60
ACROSS_SUBSTITUTED_DAY = date(2026, 8, 24)  # 31/08/2026 likewise
AFTER_THE_CHANGES = date(2026, 11, 25)  # no changed day in its count


def test_the_package_is_pinned_exactly_and_that_version_is_installed() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    pins = [d for d in pyproject["project"]["dependencies"] if d.startswith("holidays")]
    assert pins == ["holidays==0.109"]
    assert installed_version() == "0.109"


def test_a_new_database_holds_the_pinned_package_day_list_as_its_first_snapshot(store: Store) -> None:
    state = store.calendar.state()
    assert [s["id"] for s in state.snapshots] == [state.snapshot["id"]]
    snapshot = state.snapshot
    generated = generate(snapshot["first_year"], snapshot["last_year"])
    assert (snapshot["package_version"], snapshot["created_by"], snapshot["first_year"]) == \
        ("0.109", "schema revision 0008", 1990)
    assert snapshot["last_year"] >= date.today().year + 4
    assert snapshot["digest"] == generated.digest  # the revision's own digest is the workflow's
    stored = [(d["day"], d["working"], d["name_vi"], d["name_en"]) for d in state.days]
    assert stored == [(d.day, d.working, d.name_vi, d.name_en) for d in generated.days]
    assert (date(2026, 11, 24), False, "Ngày Văn hóa Việt Nam", "Vietnam Cultural Day") in stored
    assert (date(2026, 8, 22), True, "Ngày làm bù", "Swapped working day") in stored


def test_deadlines_are_counted_on_the_stored_days_not_the_installed_package(world: World) -> None:
    old_world(world)
    case_id = ceremony_case(world, ACROSS_CULTURAL_DAY)
    on_old = OLD_CALENDAR.add_working_days(ACROSS_CULTURAL_DAY, 30)
    on_installed = default_calendar().add_working_days(ACROSS_CULTURAL_DAY, 30)
    assert on_installed == on_old + timedelta(days=1)
    assert world.store.cases.load(case_id).due_on == on_old
    shown = shown_due(world, case_id)
    assert shown["due_on"] == due_rows(world)[case_id]["due_on"] == on_old.isoformat()
    # The calendar version names the holiday data: same overrides, other days, other version.
    assert shown["calendar_version"] == OLD_CALENDAR.version(2026) != default_calendar().version(2026)
    assert re.fullmatch(r"VN 2026 v0 \(\w{12}\)", shown["calendar_version"])


def test_a_stale_package_is_warned_about_and_the_snapshot_still_counts(world: World) -> None:
    fresh = cli(world, "calendar", "show", "2026", actor=AUDITOR)
    assert fresh.exit_code == 0 and fresh.stderr == ""
    old_world(world)
    case_id = ceremony_case(world, ACROSS_CULTURAL_DAY)
    warning = ("warning: deadlines are counted on the holiday data of holidays 0.60 (snapshot 2), "
               "but holidays 0.109 is installed: an administrator should run 'memberflow calendar "
               "refresh --dry-run' to see what would change, then 'memberflow calendar refresh'\n")
    for args in (["case", "show", str(case_id)], ["due"], ["calendar", "show", "2026"]):
        result = cli(world, *args, actor=AUDITOR)
        assert result.exit_code == 0, result.output
        assert result.stderr == warning, args
    shown = json.loads(cli(world, "calendar", "show", "2026", "--format", "json").stdout)
    assert "24/11/2026" not in {d["date"] for d in shown["days"]}
    assert shown["holiday_data"]["package_version"] == "0.60"


def test_refresh_dry_run_lists_changed_days_and_moved_deadlines_and_writes_nothing(world: World) -> None:
    old_world(world)
    across = ceremony_case(world, ACROSS_CULTURAL_DAY)
    substituted = ceremony_case(world, ACROSS_SUBSTITUTED_DAY)
    after = ceremony_case(world, AFTER_THE_CHANGES)
    before = table_rows(world)

    dry = cli(world, "--lang", "vi", "calendar", "refresh", "--dry-run")
    assert dry.exit_code == 0, dry.output
    lines = dry.stdout.splitlines()
    assert lines[0] == ("dữ liệu ngày lễ đang áp dụng: bản chụp 2, holidays 0.60, 1990–2031, "
                        f"sha256 {OLD['sha256'][:12]}")
    assert lines[1].startswith("gói đã cài:            holidays 0.109, 1990–")
    for line in ("đã thêm  02/05/2025 Fri  ngày nghỉ, Ngày nghỉ (thay cho ngày 26/04/2025)",
                 "đã thêm  22/08/2026 Sat  ngày làm việc, Ngày làm bù",
                 "đã thêm  31/08/2026 Mon  ngày nghỉ, Ngày nghỉ (thay cho ngày 22/08/2026)",
                 "đã thêm  24/11/2026 Tue  ngày nghỉ, Ngày Văn hóa Việt Nam",
                 "đã đổi tên 17/02/2007 Sat  ngày nghỉ, Giao thừa Tết Nguyên Đán → ngày nghỉ, Tết Nguyên Đán",
                 "số hạn đang mở sẽ bị dời: 2",
                 "chạy thử: chưa ghi gì; chạy lại không có --dry-run để áp dụng"):
        assert line in lines, line
    for case_id, decided in ((across, ACROSS_CULTURAL_DAY), (substituted, ACROSS_SUBSTITUTED_DAY)):
        old, new = (c.add_working_days(decided, 30) for c in (OLD_CALENDAR, default_calendar()))
        assert f"  hồ sơ {case_id}: hold_ceremony {format_date(old)} → {format_date(new)}" in lines
    assert not any(line.startswith(f"  hồ sơ {after}:") for line in lines)
    assert table_rows(world) == before
    english = cli(world, "calendar", "refresh", "--dry-run", "--lang", "en", "--format", "json")
    found = json.loads(english.stdout)
    assert found["applied"] is False and {m["case"] for m in found["moved"]} == {across, substituted}
    assert {"change": "added", "date": "2026-11-24", "before": None,
            "after": {"working": False, "name": "Vietnam Cultural Day"}} in found["days"]
    assert table_rows(world) == before


def test_refresh_applies_the_new_days_records_who_and_moves_every_answer(world: World) -> None:
    old_world(world)
    across = ceremony_case(world, ACROSS_CULTURAL_DAY)
    after = ceremony_case(world, AFTER_THE_CHANGES)
    unmoved = world.store.cases.load(after)
    refused = cli(world, "calendar", "refresh", actor="secretary")
    assert refused.exit_code == 5 and "not an administrator" in refused.stderr
    assert len(world.store.calendar.state().snapshots) == 2

    applied = cli(world, "calendar", "refresh")
    assert applied.exit_code == 0, applied.output
    moved_to = default_calendar().add_working_days(ACROSS_CULTURAL_DAY, 30)
    assert "open deadlines that moved: 1" in applied.stdout
    generated = package_holidays()
    assert applied.stdout.splitlines()[-1] == (
        f"applied: holiday data snapshot 3, holidays 0.109, 1990–{generated.last_year}, "
        f"sha256 {generated.digest[:12]}, recorded by quantri")
    state = world.store.calendar.state()
    record = state.snapshot
    assert (record["id"], record["package_version"], record["digest"], record["created_by"]) == \
        (3, "0.109", generated.digest, "quantri")
    changes = json.loads(record["changes"])
    assert {2025, 2026, 2027}.issubset(changes["years"]) and changes["deadlines_moved"] == 1
    assert changes["from_package_version"] == "0.60" and changes["added"] >= 4

    stored = world.store.cases.load(across)
    shown = shown_due(world, across)
    assert stored.due_on == moved_to and shown["due_on"] == moved_to.isoformat()
    assert due_rows(world)[across]["due_on"] == moved_to.isoformat()
    assert shown["calendar_version"] == stored.due_calendar == due_rows(world)[across]["calendar_version"]
    assert re.fullmatch(r"VN 2026 v1 \(\w{12}\)", stored.due_calendar)  # the refresh is a new version
    recounted = world.store.cases.load(after)  # same day, counted on the new version of its year
    assert (recounted.due_on, recounted.due_move, recounted.version) == \
        (unmoved.due_on, unmoved.due_move, unmoved.version)
    assert recounted.due_calendar == shown_due(world, after)["calendar_version"] != unmoved.due_calendar
    assert cli(world, "case", "show", str(across), actor=AUDITOR).stderr == ""
    again = cli(world, "calendar", "refresh")
    assert again.stdout.splitlines()[-1] == "the holiday data is current; nothing to do"
    assert len(world.store.calendar.state().snapshots) == 3


@pytest.mark.parametrize("table", ["holiday_snapshots", "holiday_days", "calendar_days"])
def test_the_calendar_tables_are_append_only(store: Store, table: str) -> None:
    with store.calendar_change() as change:
        change.add_days([(date(2026, 3, 7), True, "Làm bù")], "quantri")
    for statement in (f"UPDATE {table} SET created_at = created_at" if table != "holiday_days"
                      else "UPDATE holiday_days SET working = working", f"DELETE FROM {table}"):
        with pytest.raises(DBAPIError, match="append-only"), store.db.engine.begin() as conn:
            conn.execute(text(statement))


def test_holiday_data_altered_in_the_database_is_refused(world: World) -> None:
    snapshot = world.store.calendar.state().snapshot["id"]
    with world.store.db.engine.begin() as conn:
        conn.execute(text("INSERT INTO holiday_days (snapshot_id, day, working, name_vi, name_en) "
                          "VALUES (:s, :d, :w, 'Nghỉ', 'Off')"),
                     {"s": snapshot, "d": date(2026, 3, 10), "w": False})
    result = CliRunner().invoke(main, [*acting(world.store.url, AUDITOR), "due"])
    assert result.exit_code == 8
    assert result.stderr == (f"error: the holiday data of calendar snapshot {snapshot} does not "
                             "match its recorded sha256 "
                             f"{world.store.calendar.state().snapshot['digest'][:12]}: it was altered "
                             "in the database; deadlines cannot be counted on it\n")


def test_counting_a_year_outside_the_holiday_data_says_so(world: World) -> None:
    shown = cli(world, "calendar", "show", "2100", actor=AUDITOR)
    assert shown.exit_code == 0
    assert shown.stdout.splitlines()[-1] == \
        "the holiday data does not cover 2100: only weekends and overrides count"


def test_the_calendar_version_counts_refreshes_that_changed_the_year(world: World) -> None:
    """vN counts a year's changes; the digest covers the days up to the year's end, so it
    changes with any earlier day (0.60 and 0.109 first differ in February 2007)."""
    old_world(world)
    years = (2006, 2007, 2024, 2025, 2026)
    before = {year: world.service.engine.calendar.version(year) for year in years}
    assert cli(world, "calendar", "refresh").exit_code == 0
    calendar = type(world.service)(world.store).engine.calendar
    assert calendar.version(2006) == before[2006]
    assert calendar.version(2007).startswith("VN 2007 v1 (") and before[2007].startswith("VN 2007 v0 (")
    assert calendar.version(2024).startswith("VN 2024 v0 (") and calendar.version(2024) != before[2024]
    assert calendar.version(2025).startswith("VN 2025 v1 (") and calendar.version(2025) != before[2025]
    assert cli(world, "calendar", "set-day", "07/03/2026", "--working", "--reason", "Làm bù").exit_code == 0
    assert type(world.service)(world.store).engine.calendar.version(2026).startswith("VN 2026 v2 (")


def test_the_recorded_snapshot_is_kept_with_every_earlier_one(world: World) -> None:
    """A refresh adds a snapshot; the earlier ones stay for the record (append-only)."""
    old_world(world)
    assert cli(world, "calendar", "refresh").exit_code == 0
    snapshots = world.store.calendar.state().snapshots
    assert [(s["id"], s["package_version"]) for s in snapshots] == [(1, "0.109"), (2, "0.60"), (3, "0.109")]
    assert snapshots[0]["digest"] == snapshots[2]["digest"]
