"""Working-day arithmetic over Vietnamese public holidays and swapped working Saturdays.

The days come from the holiday data stored in the database (``holiday_data``: a snapshot of
the maintained ``holidays`` package, never the package itself), and administrators'
overrides are layered on top, since the Prime Minister moves days every year (2026: Tết off
14–22/2). Each change makes a new version of that year's calendar, and a deadline says
which version it was counted on.

Counting is O(log n): a day is a working day when it is Monday–Friday, unless it is one of
the few exceptions (weekdays off, weekend days worked), kept as sorted day numbers; the
working days in a range are its weekdays minus and plus the exceptions in it (bisect).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Any

from memberflow.i18n import _
from memberflow.workflow.dates import format_date
from memberflow.workflow.holiday_data import FIRST_YEAR, HolidayData, generate, years_to_cover


@dataclass(frozen=True)
class Override:
    day: date
    working: bool
    reason: str
    author: str


def _weekdays_through(ordinal: int) -> int:
    """Mondays to Fridays among day numbers 1..ordinal (day 1, 01/01/0001, is a Monday)."""
    return 5 * (ordinal // 7) + min(ordinal % 7, 5)


class WorkingCalendar:
    """Counts working days: Monday–Friday, minus public holidays, plus swapped Saturdays,
    with administrators' overrides (the newest for a day wins)."""

    def __init__(self, holidays: HolidayData, overrides: Iterable[Override] = (),
                 refreshes: Mapping[int, int] | None = None) -> None:
        self.holidays = holidays
        self.overrides: dict[date, Override] = {o.day: o for o in overrides}
        self._refreshes = dict(refreshes or {})  # year -> refreshes that changed its days
        exceptions: dict[int, bool] = {}
        for listed in holidays.days:
            if listed.working != (listed.day.weekday() < 5):
                exceptions[listed.day.toordinal()] = listed.working
        for override in self.overrides.values():
            if override.working != (override.day.weekday() < 5):
                exceptions[override.day.toordinal()] = override.working
            else:
                exceptions.pop(override.day.toordinal(), None)
        self._exceptions = exceptions
        self._off = sorted(o for o, working in exceptions.items() if not working)
        self._worked = sorted(o for o, working in exceptions.items() if working)
        self._versions: dict[int, str] = {}
        self._digests: dict[int, str] = {}

    def with_overrides(self, added: Iterable[Override]) -> WorkingCalendar:
        """This calendar with more overrides (newer than every one it has)."""
        return WorkingCalendar(self.holidays, [*self.overrides.values(), *added], self._refreshes)

    def with_holidays(self, holidays: HolidayData, changed_years: Iterable[int]) -> WorkingCalendar:
        """This calendar on other holiday data, which changes the days of ``changed_years``."""
        refreshes = dict(self._refreshes)
        for year in changed_years:
            refreshes[year] = refreshes.get(year, 0) + 1
        return WorkingCalendar(holidays, self.overrides.values(), refreshes)

    def is_working_day(self, day: date) -> bool:
        found = self._exceptions.get(day.toordinal())
        return found if found is not None else day.weekday() < 5

    def exceptions(self) -> dict[date, bool]:
        """Every day counted otherwise than Monday–Friday: day -> working."""
        return {date.fromordinal(o): working for o, working in self._exceptions.items()}

    def _rank(self, ordinal: int) -> int:
        """Working days up to and including day ``ordinal``, from an arbitrary origin."""
        return (_weekdays_through(ordinal) - bisect_right(self._off, ordinal)
                + bisect_right(self._worked, ordinal))

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end``; negative when end < start."""
        return self._rank(end.toordinal()) - self._rank(start.toordinal())

    def add_working_days(self, start: date, count: int) -> date:
        """The ``count``-th working day after ``start`` (``start`` itself is not counted)."""
        if count <= 0:
            return start
        origin = start.toordinal()
        target = self._rank(origin) + count
        low, high = origin, origin + count + count // 2 + 7
        while self._rank(high) < target:  # a long run of days off: look further
            low, high = high, high + (high - origin)
        while high - low > 1:  # rank(low) < target <= rank(high)
            middle = (low + high) // 2
            if self._rank(middle) >= target:
                high = middle
            else:
                low = middle
        return date.fromordinal(high)

    def version(self, year: int) -> str:
        """``VN 2026 v2 (1a2b3c4d5e6f)``: how many changes the year has had (overridden days,
        and refreshes of the holiday data that changed its days), and a digest of the holiday
        days and overrides up to the end of the year. The digest is chained from 1990 on, since
        a deadline due in a year may be counted from a day of the year before: two deadlines
        due in a year with the same version were counted on the same days."""
        found = self._versions.get(year)
        if found is None:
            overridden = sorted((o.day.isoformat(), o.working, o.reason)
                                for o in self.overrides.values() if o.day.year == year)
            changes = len(overridden) + self._refreshes.get(year, 0)
            found = self._versions[year] = f"VN {year} v{changes} ({self._digest(year)[:12]})"
        return found

    def _digest(self, year: int) -> str:
        """sha256 of the year's holiday days and overrides, chained to the year before's
        from 1990 on (years before stand alone)."""
        if year not in self._digests:
            known = [y for y in self._digests if FIRST_YEAR <= y < year]
            first = year if year <= FIRST_YEAR else max(known, default=FIRST_YEAR - 1) + 1
            for each in range(first, year + 1):
                listed = [(d.day.isoformat(), d.working) for d in self.holidays.in_year(each)]
                overridden = sorted((o.day.isoformat(), o.working, o.reason)
                                    for o in self.overrides.values() if o.day.year == each)
                before = self._digests[each - 1] if each > FIRST_YEAR else ""
                self._digests[each] = hashlib.sha256(f"{before}{(listed, overridden)!r}".encode()).hexdigest()
        return self._digests[year]

    def year(self, year: int, lang: str = "vi") -> list[dict[str, Any]]:
        """Every day of the year the holiday data lists or an administrator set, with why."""
        listed = {d.day: d for d in self.holidays.in_year(year)}
        days = []
        for day in sorted(listed.keys() | {d for d in self.overrides if d.year == year}):
            override, holiday = self.overrides.get(day), listed.get(day)
            why = (_("{reason} (set by {author})").format(
                       reason=override.reason, author=override.author) if override
                   else holiday.name(lang) if holiday else "")
            days.append({"date": format_date(day), "weekday": day.strftime("%a"),
                         "working": self.is_working_day(day), "why": why})
        return days


def calendar_from(holidays: HolidayData, entries: Iterable[Mapping[str, Any]],
                  refreshes: Mapping[int, int] | None = None) -> WorkingCalendar:
    return WorkingCalendar(holidays, (Override(e["day"], bool(e["working"]), e["reason"], e["author"])
                                      for e in entries), refreshes)


@lru_cache(maxsize=1)
def package_holidays() -> HolidayData:
    """The installed package's day list, for code that runs without a database (tests,
    tools); a database's deadlines are counted on its stored snapshot instead."""
    from memberflow.workflow.dates import today

    return generate(*years_to_cover(today().year))


@lru_cache(maxsize=1)
def default_calendar() -> WorkingCalendar:
    return WorkingCalendar(package_holidays())
