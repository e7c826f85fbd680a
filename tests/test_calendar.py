"""Administrators override the working-day calendar; deadlines counted afterwards use it and
say which calendar version they were counted on."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

from click.testing import CliRunner, Result
from conftest import ADMISSION_PATH, World
from hypothesis import given, settings
from hypothesis import strategies as st

from cli import main
from workflow.dates import format_date
from workflow.workdays import Override, WorkingCalendar


def cli(world: World, *args: str, actor: str = "quantri") -> Result:
    return CliRunner().invoke(main, ["--db", world.store.url, "--actor", actor, *args])


def admin(world: World) -> World:
    world.store.directory.add_user("quantri", "Quản trị")
    world.store.directory.grant("quantri", "administrator", None)
    return world


def decision_due(world: World, case_id: int) -> tuple[str, str]:
    shown = json.loads(cli(world, "case", "show", str(case_id), "--format", "json").stdout)
    due = next(d for d in shown["deadlines"] if d.startswith("decide_admission"))
    found = re.fullmatch(r"decide_admission by (\S+) \(calendar (VN \d{4} v\d+ \(\w+\))\)", due)
    assert found, due
    return found.group(1), found.group(2)


def test_an_extra_day_off_moves_a_running_deadline_and_is_named(world: World) -> None:
    admin(world)
    case_id = world.open_case(on=world.ago(days=30))
    world.walk(case_id, ADMISSION_PATH[:4], world.ago(days=30), gap_days=1)  # branch vote: 27 days ago
    due_text, calendar_text = decision_due(world, case_id)
    due = date(*reversed([int(p) for p in due_text.split("/")]))
    assert calendar_text.startswith(f"VN {due.year} v0 ")
    plain = WorkingCalendar()
    weekday = next(world.ago(days=n) for n in range(1, 20) if plain.is_working_day(world.ago(days=n)))
    set_off = cli(world, "calendar", "set-day", format_date(weekday), "--off", "--reason", "Nghỉ bù")
    assert set_off.exit_code == 0, set_off.output
    assert f"{format_date(weekday)} is now a day off; calendar VN {weekday.year} v1" in set_off.stdout
    moved_text, moved_calendar = decision_due(world, case_id)
    moved = date(*reversed([int(p) for p in moved_text.split("/")]))
    assert moved > due and WorkingCalendar().working_days_between(due, moved) == 1
    if moved.year == weekday.year:
        assert moved_calendar.startswith(f"VN {moved.year} v1 ")


def test_only_administrators_set_days_and_bad_requests_change_nothing(world: World) -> None:
    admin(world)
    refused = cli(world, "calendar", "set-day", "02/03/2026", "--off", "--reason", "x", actor="secretary")
    assert refused.exit_code == 5
    assert cli(world, "calendar", "set-day", "02/03/2026", "--reason", "x").exit_code == 2
    assert cli(world, "calendar", "set-day", "31/02/2026", "--off", "--reason", "x").exit_code == 2
    assert cli(world, "calendar", "set-day", "02/03/1980", "--off", "--reason", "x").exit_code == 2
    assert world.store.calendar.entries() == []


def test_calendar_show_lists_holidays_swaps_and_overrides_with_the_version(world: World) -> None:
    admin(world)
    assert cli(world, "calendar", "set-day", "07/03/2026", "--working", "--reason", "Làm bù").exit_code == 0
    shown = json.loads(cli(world, "calendar", "show", "2026", "--format", "json").stdout)
    assert shown["calendar"].startswith("VN 2026 v1 (")
    days = {d["date"]: d for d in shown["days"]}
    assert days["17/02/2026"]["working"] is False and "Lunar New Year" in days["17/02/2026"]["why"]
    assert days["07/03/2026"] == {"date": "07/03/2026", "weekday": "Sat", "working": True,
                                  "why": "Làm bù (set by quantri)"}


def test_overrides_count_in_working_day_arithmetic() -> None:
    plain = WorkingCalendar()
    friday = date(2026, 3, 6)
    saturday = friday + timedelta(days=1)
    assert plain.add_working_days(friday, 1) == date(2026, 3, 9)
    swapped = WorkingCalendar([Override(saturday, True, "làm bù", "quantri")])
    assert swapped.add_working_days(friday, 1) == saturday
    assert swapped.working_days_between(friday, date(2026, 3, 9)) == 2
    off = WorkingCalendar([Override(date(2026, 3, 9), False, "nghỉ", "quantri")])
    assert off.add_working_days(friday, 1) == date(2026, 3, 10)
    newest_wins = WorkingCalendar([Override(saturday, True, "a", "x"), Override(saturday, False, "b", "x")])
    assert not newest_wins.is_working_day(saturday)
    assert plain.version(2026) != swapped.version(2026) and swapped.version(2025) == plain.version(2025)


# -- yearly calendar files (definitions/calendars) --------------------------------------------
YEAR_FILE = """country: VN
year: 2027
decision: Thông báo lịch nghỉ năm 2027 (thử)
days:
  - {date: 2027-03-05, kind: day_off, reason: Nghỉ bù}
  - {date: 2027-03-13, kind: working_day, reason: Làm bù cho ngày 05/03}
  - {date: 2027-02-06, kind: day_off, reason: Thứ Bảy (đã là ngày nghỉ)}
"""


def test_a_year_file_adds_only_what_differs_and_twice_changes_nothing(world: World, tmp_path) -> None:
    admin(world)
    path = tmp_path / "VN-2027.yaml"
    path.write_text(YEAR_FILE, encoding="utf-8")
    first = cli(world, "calendar", "load", str(path))
    assert first.exit_code == 0, first.stderr
    assert first.stdout.startswith("VN-2027.yaml: 2 of 3 day(s) added to 2027 (the rest already so); "
                                   "calendar VN 2027 v2 (")
    calendar = world.service.__class__(world.store).engine.calendar
    assert not calendar.is_working_day(date(2027, 3, 5))
    assert calendar.is_working_day(date(2027, 3, 13))
    again = cli(world, "calendar", "load", str(path))
    assert again.stdout.startswith("VN-2027.yaml: 0 of 3 day(s) added")
    assert len(world.store.calendar.entries()) == 2
    assert {e["author"] for e in world.store.calendar.entries()} == {"quantri"}


def test_a_bad_year_file_names_each_line_and_applies_nothing(world: World, tmp_path) -> None:
    admin(world)
    path = tmp_path / "bad.yaml"
    path.write_text(YEAR_FILE.replace("kind: working_day", "kind: working")
                    .replace("2027-02-06", "2026-02-06").replace("country: VN", "country: LA"),
                    encoding="utf-8")
    result = cli(world, "calendar", "load", str(path))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[1:] == [
        f"  {path}:1: country must be VN",
        f"  {path}:6: kind must be day_off or working_day",
        f"  {path}:7: 2026-02-06 is not in 2027"]
    assert world.store.calendar.entries() == []
    path.write_text(YEAR_FILE, encoding="utf-8")
    refused = cli(world, "calendar", "load", str(path), actor="secretary")
    assert refused.exit_code == 5
    assert world.store.calendar.entries() == []


def test_the_bundled_2026_file_agrees_with_the_holidays_package() -> None:
    from pathlib import Path

    from workflow.calendar_files import load_calendar_file
    from workflow.workdays import default_calendar

    bundled = load_calendar_file(Path(__file__).parent.parent / "definitions/calendars/VN-2026.yaml")
    assert [d.day for d in bundled.days] == [date(2026, 2, 14) + timedelta(n) for n in range(9)]
    assert bundled.changes(default_calendar()) == []  # Tết 14–22/02/2026: nothing to add


@settings(max_examples=200, deadline=None)
@given(start=st.dates(date(2024, 1, 1), date(2027, 12, 31)), days=st.integers(-400, 400),
       swaps=st.lists(st.tuples(st.dates(date(2024, 1, 1), date(2027, 12, 31)), st.booleans()),
                      max_size=6))
def test_counting_working_days_matches_walking_day_by_day(start: date, days: int,
                                                           swaps: list[tuple[date, bool]]) -> None:
    """The package's count plus the overrides in range equals checking every day."""
    calendar = WorkingCalendar(Override(day, working, "thử", "quantri") for day, working in swaps)
    end = start + timedelta(days=days)
    low, high = sorted((start, end))
    walked = sum(calendar.is_working_day(low + timedelta(n)) for n in range(1, (high - low).days + 1))
    assert calendar.working_days_between(start, end) == (walked if end >= start else -walked)


def test_init_never_undoes_a_day_an_administrator_set(world: World) -> None:
    """The bundled seed is applied by every init; a day an administrator set stays as set."""
    admin(world)
    assert cli(world, "calendar", "set-day", "20/02/2026", "--working", "--reason", "Làm bù").exit_code == 0
    before = world.store.calendar.entries()
    again = CliRunner().invoke(main, ["--db", world.store.url, "init"])
    assert again.exit_code == 0, again.stderr
    assert "VN-2026.yaml: 0 of 9 day(s) added" in again.stdout
    assert world.store.calendar.entries() == before


def test_a_date_with_a_time_is_not_a_day(world: World, tmp_path) -> None:
    admin(world)
    path = tmp_path / "VN-2027.yaml"
    path.write_text(YEAR_FILE.replace("2027-03-05", "2027-03-05 10:00:00"), encoding="utf-8")
    result = cli(world, "calendar", "load", str(path))
    assert result.exit_code == 2
    assert result.stderr.splitlines()[1:] == [
        f"  {path}:5: a day is a date (yyyy-mm-dd), not a date and time"]
    assert world.store.calendar.entries() == []
