"""Administrators override the working-day calendar; deadlines counted afterwards use it and
say which calendar version they were counted on."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta

from click.testing import CliRunner, Result
from conftest import ADMISSION_PATH, World

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
