"""Yearly calendar files (``definitions/calendars/*.yaml``): the Prime Minister's schedule of
days off and swapped working days, kept as data beside the procedures.

A file is checked whole, every problem with its line, before any day of it is applied; only
days the calendar does not already have that way are added, so applying a file twice (or a
file the ``holidays`` package already agrees with) changes nothing.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from memberflow.errors import BadInput, DefinitionInvalid, Problem
from memberflow.i18n import _
from memberflow.workflow.dates import parse_date
from memberflow.workflow.inputs import HIDDEN_CATEGORIES
from memberflow.workflow.workdays import WorkingCalendar
from memberflow.workflow.yaml_source import LineDict, LineList, parse_yaml, read_text

FILE_KEYS = {"country", "year", "decision", "days"}
DAY_KEYS = {"date", "kind", "reason"}
KINDS = {"day_off": False, "working_day": True}  # not off/working: YAML reads "off" as false
MAX_REASON = 500


@dataclass(frozen=True)
class CalendarDay:
    day: date
    working: bool
    reason: str
    line: int


@dataclass(frozen=True)
class CalendarFile:
    path: str
    year: int
    decision: str
    days: tuple[CalendarDay, ...]

    def changes(self, calendar: WorkingCalendar) -> list[CalendarDay]:
        """The days the calendar does not already count this way."""
        return [d for d in self.days if calendar.is_working_day(d.day) != d.working]


def load_calendar_file(path: str | Path) -> CalendarFile:
    file = str(path)
    data, problems = parse_yaml(read_text(Path(path)), file)
    if not isinstance(data, LineDict):
        raise DefinitionInvalid(problems or [Problem(file, 1, _("a calendar file is a mapping with "
                                                                "country, year, decision and days"))])
    problems += [Problem(file, data.line_of(k), _("unknown key {k!r}").format(
                                                    k=k)) for k in data if k not in FILE_KEYS]
    if data.get("country") != "VN":
        problems.append(Problem(file, data.line_of("country"), _("country must be VN")))
    year = data.get("year")
    if isinstance(year, bool) or not isinstance(year, int) or not 1990 <= year <= 2100:
        problems.append(Problem(file, data.line_of("year"), _("year must be a year from 1990 to 2100")))
        year = 0
    decision = _text(data.get("decision"), file, data.line_of("decision"), "decision", problems)
    raw = data.get("days")
    if not isinstance(raw, LineList):
        problems.append(Problem(file, data.line_of("days"), _("days must be a list")))
        raw = LineList()
    days = [d for i, item in enumerate(raw) if (d := _day(item, raw.line_of(i), file, year, problems))]
    seen: dict[date, int] = {}
    for day in days:
        if day.day in seen:
            problems.append(Problem(file, day.line, _("{day} is also on line {seen}").format(
                                                        day=day.day.isoformat(), seen=seen[day.day])))
        seen.setdefault(day.day, day.line)
    if problems:
        raise DefinitionInvalid(sorted(problems, key=lambda p: p.line))
    return CalendarFile(file, year, decision, tuple(days))


def _day(item: Any, line: int, file: str, year: int, problems: list[Problem]) -> CalendarDay | None:
    if not isinstance(item, LineDict):
        problems.append(Problem(file, line, _("each day is a mapping: {date, kind, reason}")))
        return None
    line = item.line
    problems += [Problem(file, item.line_of(k), _("unknown key {k!r}").format(
                                                    k=k)) for k in item if k not in DAY_KEYS]
    when = _date(item.get("date"), file, item.line_of("date"), problems)
    if when and year and when.year != year:
        problems.append(Problem(file, item.line_of("date"), _("{when} is not in {year}").format(
                                                                when=when.isoformat(), year=year)))
    kind = item.get("kind")
    if kind not in KINDS:
        problems.append(Problem(file, item.line_of("kind"), _("kind must be day_off or working_day")))
    reason = _text(item.get("reason"), file, item.line_of("reason"), "reason", problems)
    if when is None or kind not in KINDS or not reason:
        return None
    return CalendarDay(when, KINDS[kind], reason, line)


def _date(value: Any, file: str, line: int, problems: list[Problem]) -> date | None:
    if isinstance(value, datetime):
        problems.append(Problem(file, line, _("a day is a date (yyyy-mm-dd), not a date and time")))
        return None
    if isinstance(value, date):
        return value
    try:
        return parse_date(str(value), "date") if isinstance(value, str) else _missing()
    except BadInput as bad:
        problems.append(Problem(file, line, str(bad)))
        return None


def _missing() -> date:
    raise BadInput(_("each day needs a date (yyyy-mm-dd or dd/mm/yyyy)"))


def _text(value: Any, file: str, line: int, what: str, problems: list[Problem]) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_REASON \
            or any(unicodedata.category(c) in HIDDEN_CATEGORIES for c in value):
        problems.append(Problem(file, line, _("{what} must be text of at most {max_reason} characters with "
                                              "no control character").format(
                                                what=what, max_reason=MAX_REASON)))
        return ""
    return value.strip()
