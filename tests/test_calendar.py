"""Administrators override the working-day calendar; every deadline it moves moves at once,
everywhere (case show, due, case list, tick and their JSON), and says which calendar version
it was counted on."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

from click.testing import CliRunner, Result
from conftest import ADMISSION_PATH, AUDITOR, World, acting
from hypothesis import given, settings
from hypothesis import strategies as st
from memberflow.cli import main
from memberflow.workflow.dates import format_date
from memberflow.workflow.workdays import Override, WorkingCalendar, default_calendar, package_holidays


def cli(world: World, *args: str, actor: str = "quantri") -> Result:
    return CliRunner().invoke(main, [*acting(world.store.url, actor), *args])


def admin(world: World) -> World:
    world.store.directory.add_user("quantri", "Quản trị")
    world.store.directory.grant("quantri", "administrator", None)
    return world


def decision_due(world: World, case_id: int) -> tuple[str, str]:
    due = shown_deadlines(world, case_id)["decide_admission"]
    assert re.fullmatch(r"VN \d{4} v\d+ \(\w{12}\)", due["calendar_version"]), due
    return format_date(date.fromisoformat(due["due_on"])), due["calendar_version"]


def shown_deadlines(world: World, case_id: int) -> dict[str, dict]:
    result = cli(world, "--lang", "vi", "case", "show", str(case_id), "--format", "json", actor=AUDITOR)
    assert result.exit_code == 0, result.stderr
    return {d["move"]: d for d in json.loads(result.stdout)["deadlines"]}


def due_row(world: World, case_id: int, *args: str) -> dict | None:
    result = cli(world, "due", "--format", "json", *args, actor=AUDITOR)
    assert result.exit_code == 0, result.stderr
    return next((r for r in json.loads(result.stdout) if r["case"] == case_id), None)


def listed_due(world: World, case_id: int) -> str | None:
    result = cli(world, "case", "list", "--format", "json", actor=AUDITOR)
    assert result.exit_code == 0, result.stderr
    return next(r["due_on"] for r in json.loads(result.stdout) if r["id"] == case_id)


def walked(start: date, count: int, working: dict[date, bool]) -> date:
    """The count-th working day after start, walking day by day on the package's calendar
    with ``working`` set on top (an oracle independent of the calendar's arithmetic)."""
    day = start
    while count:
        day += timedelta(days=1)
        count -= working.get(day, default_calendar().is_working_day(day))
    return day


def test_an_extra_day_off_moves_a_running_deadline_and_is_named(world: World) -> None:
    admin(world)
    case_id = world.open_case(on=world.ago(days=30))
    world.walk(case_id, ADMISSION_PATH[:4], world.ago(days=30), gap_days=1)  # branch vote: 27 days ago
    due_text, calendar_text = decision_due(world, case_id)
    due = date(*reversed([int(p) for p in due_text.split("/")]))
    assert calendar_text.startswith(f"VN {due.year} v0 ")
    plain = default_calendar()
    weekday = next(world.ago(days=n) for n in range(1, 20) if plain.is_working_day(world.ago(days=n)))
    set_off = cli(world, "calendar", "set-day", format_date(weekday), "--off", "--reason", "Nghỉ bù")
    assert set_off.exit_code == 0, set_off.output
    assert f"{format_date(weekday)} is now a day off; calendar VN {weekday.year} v1" in set_off.stdout
    moved_text, moved_calendar = decision_due(world, case_id)
    moved = date(*reversed([int(p) for p in moved_text.split("/")]))
    assert moved > due and default_calendar().working_days_between(due, moved) == 1
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
    shown = json.loads(cli(world, "calendar", "show", "2026", "--lang", "en", "--format", "json").stdout)
    assert shown["calendar"].startswith("VN 2026 v1 (")
    days = {d["date"]: d for d in shown["days"]}
    assert days["17/02/2026"]["working"] is False and days["17/02/2026"]["why"] == "Lunar New Year"
    assert days["07/03/2026"] == {"date": "07/03/2026", "weekday": "Sat", "working": True,
                                  "why": "Làm bù (set by quantri)"}


def test_overrides_count_in_working_day_arithmetic() -> None:
    plain = default_calendar()
    friday = date(2026, 3, 6)
    saturday = friday + timedelta(days=1)
    assert plain.add_working_days(friday, 1) == date(2026, 3, 9)
    swapped = WorkingCalendar(package_holidays(), [Override(saturday, True, "làm bù", "quantri")])
    assert swapped.add_working_days(friday, 1) == saturday
    assert swapped.working_days_between(friday, date(2026, 3, 9)) == 2
    off = WorkingCalendar(package_holidays(), [Override(date(2026, 3, 9), False, "nghỉ", "quantri")])
    assert off.add_working_days(friday, 1) == date(2026, 3, 10)
    newest_wins = WorkingCalendar(package_holidays(), [Override(saturday, True, "a", "x"),
                                                       Override(saturday, False, "b", "x")])
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
    calendar = type(world.service)(world.store).engine.calendar
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

    from memberflow.workflow.calendar_files import load_calendar_file

    bundled = load_calendar_file(Path(__file__).parent.parent / "definitions/calendars/VN-2026.yaml")
    assert [d.day for d in bundled.days] == [date(2026, 2, 14) + timedelta(n) for n in range(9)]
    assert bundled.changes(default_calendar()) == []  # Tết 14–22/02/2026: nothing to add


@settings(max_examples=300, deadline=None)
@given(start=st.dates(date(1989, 1, 1), date(2032, 12, 31)), days=st.integers(-400, 400),
       count=st.integers(0, 300),
       swaps=st.lists(st.tuples(st.dates(date(1989, 1, 1), date(2032, 12, 31)), st.booleans()),
                      max_size=6))
def test_counting_working_days_matches_walking_day_by_day(start: date, days: int, count: int,
                                                           swaps: list[tuple[date, bool]]) -> None:
    """Counting by the exceptions (bisect) equals walking every day, on the package's days
    with overrides on top."""
    calendar = WorkingCalendar(package_holidays(),
                               (Override(day, working, "thử", "quantri") for day, working in swaps))
    end = start + timedelta(days=days)
    low, high = sorted((start, end))
    overrides = dict(swaps)
    steps = sum(overrides.get(low + timedelta(n), default_calendar().is_working_day(low + timedelta(n)))
                for n in range(1, (high - low).days + 1))
    assert calendar.working_days_between(start, end) == (steps if end >= start else -steps)
    assert calendar.add_working_days(start, count) == walked(start, count, overrides)


@lru_cache(maxsize=1)
def the_package() -> Any:
    import holidays

    return holidays.country_holidays("VN", years=range(1989, 2032))


@settings(max_examples=300, deadline=None)
@given(start=st.dates(date(1990, 1, 1), date(2030, 6, 30)), count=st.integers(1, 200))
def test_the_stored_days_count_as_the_package_counts(start: date, count: int) -> None:
    """Without overrides, the calendar counts as the holidays package itself does."""
    package = the_package()
    end = start + timedelta(days=count)
    assert default_calendar().add_working_days(start, count) == package.get_nth_working_day(start, count)
    assert default_calendar().working_days_between(start, end) == \
        package.get_working_days_count(start + timedelta(days=1), end)


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


# -- one deadline, one answer (issue 13, item 4) ------------------------------------------------
def overdue_ceremony(world: World) -> tuple[int, date, date]:
    """A case whose ceremony was due on the last working day before today (30 working days
    after the decision); returns (case, decision day, due day)."""
    calendar = default_calendar()
    due = world.today - timedelta(days=1)
    while not calendar.is_working_day(due):
        due -= timedelta(days=1)
    decided = next(due - timedelta(days=n) for n in range(30, 80)
                   if calendar.add_working_days(due - timedelta(days=n), 30) == due)
    case_id = world.open_case(on=decided - timedelta(days=60))
    assert world.walk(case_id, ADMISSION_PATH[:6], decided - timedelta(days=50)) == decided
    return case_id, decided, due


def test_a_day_off_inside_a_running_deadline_moves_it_in_every_output(world: World) -> None:
    """Before: case show moved the deadline, but due, case list and tick kept the old date
    (and tick flagged a deadline that, on the calendar in force, had not passed)."""
    admin(world)
    case_id, decided, due = overdue_ceremony(world)
    assert due_row(world, case_id, "--overdue")["due_on"] == due.isoformat()
    day_off = default_calendar().add_working_days(decided, 10)
    earlier = world.open_case(on=decided - timedelta(days=110))  # its ceremony was due before the day
    world.walk(earlier, ADMISSION_PATH[:6], decided - timedelta(days=100))
    earlier_due = world.store.cases.load(earlier).due_on
    assert earlier_due < day_off
    version = world.store.cases.load(case_id).version

    changed = cli(world, "calendar", "set-day", format_date(day_off), "--off", "--reason", "Nghỉ bù")
    assert changed.exit_code == 0, changed.stderr
    expected = walked(decided, 30, {day_off: False})
    assert expected > due and expected >= world.today

    shown = shown_deadlines(world, case_id)["hold_ceremony"]
    listed = due_row(world, case_id, "--within", "30")
    assert listed is not None and listed["due_on"] == shown["due_on"] == expected.isoformat()
    assert listed_due(world, case_id) == expected.isoformat()
    assert listed["working_days_left"] == shown["working_days_left"] == \
        default_calendar().working_days_between(world.today, expected)
    assert listed["calendar_version"] == shown["calendar_version"] == \
        world.store.cases.load(case_id).due_calendar
    assert listed["stale"] is False and listed["overdue"] is shown["overdue"] is False
    assert due_row(world, case_id, "--overdue") is None
    ticked = CliRunner().invoke(main, [*acting(world.store.url, "secretary"), "tick"])
    assert "deadlines newly flagged overdue: 1" in ticked.stdout, ticked.output  # the earlier one
    assert world.store.cases.overdue_flags(case_id) == []
    assert [f["due_on"] for f in world.store.cases.overdue_flags(earlier)] == [earlier_due]
    assert world.store.cases.load(case_id).version == version  # a derived index, not a move
    unmoved = due_row(world, earlier, "--overdue")  # not counted again; named by the version in force
    assert (unmoved["due_on"], unmoved["stale"]) == (earlier_due.isoformat(), False)
    assert unmoved["calendar_version"] == shown_deadlines(world, earlier)["hold_ceremony"]["calendar_version"]
    assert f"case {case_id}: hold_ceremony {format_date(due)} → {format_date(expected)}" in changed.stdout


def test_a_year_file_moves_the_stored_deadlines_its_days_change(world: World, tmp_path) -> None:
    """A swapped working Saturday inside a running deadline brings it one working day closer,
    everywhere, as soon as the file is loaded."""
    admin(world)
    vote = world.ago(days=20)
    case_id = world.open_case(on=vote - timedelta(days=40))
    world.walk(case_id, ADMISSION_PATH[:3], vote - timedelta(days=30))
    world.step(case_id, "record_branch_vote", vote)
    saturday = next(world.today + timedelta(days=n) for n in range(1, 15)
                    if (world.today + timedelta(days=n)).weekday() == 5
                    and not default_calendar().is_working_day(world.today + timedelta(days=n)))
    path = tmp_path / "swap.yaml"
    path.write_text(f"country: VN\nyear: {saturday.year}\ndecision: Thông báo làm bù\ndays:\n"
                    f"  - {{date: {saturday.isoformat()}, kind: working_day, reason: Làm bù}}\n",
                    encoding="utf-8")
    before = shown_deadlines(world, case_id)["decide_admission"]["due_on"]
    loaded = cli(world, "calendar", "load", str(path))
    assert loaded.exit_code == 0, loaded.stderr
    expected = walked(vote, 60, {saturday: True})
    assert expected.isoformat() < before
    assert shown_deadlines(world, case_id)["decide_admission"]["due_on"] == expected.isoformat()
    assert due_row(world, case_id, "--within", "100")["due_on"] == expected.isoformat()
    assert listed_due(world, case_id) == expected.isoformat()
    assert f"open deadlines that moved: 1\n  case {case_id}: decide_admission" in loaded.stdout


def test_case_show_json_gives_deadlines_as_fields_and_the_table_a_sentence(world: World) -> None:
    case_id = world.open_case(on=world.ago(days=30))
    world.walk(case_id, ADMISSION_PATH[:4], world.ago(days=30), gap_days=1)
    vote = world.ago(days=27)
    due = walked(vote, 60, {})
    version = json.loads(cli(world, "calendar", "show", str(due.year), "--format", "json",
                             actor=AUDITOR).stdout)["calendar"]
    shown = shown_deadlines(world, case_id)["decide_admission"]
    assert shown == {"move": "decide_admission", "label": "Quyết định kết nạp", "due_on": due.isoformat(),
                     "working_days_left": default_calendar().working_days_between(world.today, due),
                     "overdue": False, "calendar_version": version, "counted_from": "branch_vote_date",
                     "start": vote.isoformat(), "extended": False}
    table = cli(world, "case", "show", str(case_id), actor=AUDITOR)
    assert f'"decide_admission by {format_date(due)} (calendar {version})"' in table.stdout
    past = cli(world, "case", "show", str(case_id), "--as-of", format_date(vote), "--format", "json",
               actor=AUDITOR)
    assert json.loads(past.stdout)["deadlines"][0]["working_days_left"] == 60


def test_calendar_show_names_holidays_in_the_chosen_language(world: World) -> None:
    admin(world)
    def why(*args: str) -> dict[str, str]:
        shown = CliRunner(env={"MEMBERFLOW_LANG": None}).invoke(
            main, [*acting(world.store.url, AUDITOR), "calendar", "show", "2026", "--format", "json",
                   *args])
        assert shown.exit_code == 0, shown.stderr
        return {d["date"]: d["why"] for d in json.loads(shown.stdout)["days"]}

    vietnamese, english = why(), why("--lang", "en")
    assert vietnamese["17/02/2026"] == "Tết Nguyên Đán" and english["17/02/2026"] == "Lunar New Year"
    assert vietnamese["02/09/2026"] == "Quốc khánh" and english["02/09/2026"] == "National Day"
    # A date inside a holiday's name is day first in English too (the package writes it US-style).
    assert vietnamese["31/08/2026"] == "Ngày nghỉ (thay cho ngày 22/08/2026)"
    assert english["31/08/2026"] == "Day off (substituted from 22/08/2026)"
    assert why("--lang", "vi") == vietnamese
    assert CliRunner().invoke(main, [*acting(world.store.url, AUDITOR), "--lang", "en", "calendar", "show",
                                     "2026", "--format", "json"]).stdout == \
        cli(world, "calendar", "show", "2026", "--lang", "en", "--format", "json").stdout
    table = cli(world, "--lang", "vi", "calendar", "show", "2026")
    assert "Tết Nguyên Đán" in table.stdout and "Lunar New Year" not in table.stdout
