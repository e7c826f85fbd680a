"""Working-day arithmetic over Vietnamese public holidays and swapped working Saturdays.

Seeded from the maintained ``holidays`` package (country VN) rather than re-deriving the
lunar calendar. The Prime Minister moves days every year (2026: Tết off 14–22/2), so
administrators' overrides are layered on top; each change makes a new version of that
year's calendar, and a deadline says which version it was counted on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any

import holidays

from .dates import format_date


@dataclass(frozen=True)
class Override:
    day: date
    working: bool
    reason: str
    author: str


class WorkingCalendar:
    """Counts working days: Monday–Friday, minus public holidays, plus swapped Saturdays,
    with administrators' overrides (the newest for a day wins)."""

    name = "holidays-VN"

    def __init__(self, overrides: Iterable[Override] = ()) -> None:
        self._days = holidays.country_holidays("VN")
        self.overrides: dict[date, Override] = {o.day: o for o in overrides}

    def is_working_day(self, day: date) -> bool:
        override = self.overrides.get(day)
        if override is not None:
            return override.working
        return bool(self._days.is_working_day(day))

    def add_working_days(self, start: date, count: int) -> date:
        """The ``count``-th working day after ``start`` (``start`` itself is not counted)."""
        if count <= 0:
            return start
        if not self.overrides:
            return self._days.get_nth_working_day(start, count)
        day = start
        while count:
            day += timedelta(days=1)
            count -= self.is_working_day(day)
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end``; negative when end < start."""
        if end == start:
            return 0
        sign = 1 if end > start else -1
        low, high = sorted((start, end))
        count = self._days.get_working_days_count(low + timedelta(days=1), high)
        for day, override in self.overrides.items():  # few per year; only those in range count
            if low < day <= high and override.working != self._days.is_working_day(day):
                count += 1 if override.working else -1
        return sign * count

    def version(self, year: int) -> str:
        """``VN 2026 v2 (1a2b3c4d5e6f)``: how many overrides the year has and their digest."""
        entries = sorted((o.day.isoformat(), o.working, o.reason) for o in self.overrides.values()
                         if o.day.year == year)
        digest = hashlib.sha256(repr(entries).encode()).hexdigest()[:12]
        return f"VN {year} v{len(entries)} ({digest})"

    def year(self, year: int) -> list[dict[str, Any]]:
        """Every day of the year that is not an ordinary weekday or weekend, with why."""
        days = []
        day = date(year, 1, 1)
        while day.year == year:
            override = self.overrides.get(day)
            usual = bool(self._days.is_working_day(day))
            if override is not None or usual != (day.weekday() < 5):
                working = override.working if override else usual
                why = (f"{override.reason} (set by {override.author})" if override
                       else self._days.get(day) or "swapped working day")
                days.append({"date": format_date(day), "weekday": day.strftime("%a"),
                             "working": working, "why": why})
            day += timedelta(days=1)
        return days


def calendar_from(entries: Iterable[Mapping[str, Any]]) -> WorkingCalendar:
    return WorkingCalendar(Override(e["day"], bool(e["working"]), e["reason"], e["author"])
                           for e in entries)


@lru_cache(maxsize=1)
def default_calendar() -> WorkingCalendar:
    return WorkingCalendar()
