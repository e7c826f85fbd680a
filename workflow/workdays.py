"""Working-day arithmetic over Vietnamese public holidays and swapped working Saturdays.

Seeded from the maintained ``holidays`` package (country VN) rather than re-deriving the
lunar calendar; per-year overrides by administrators are layered on top of this class.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays


class WorkingCalendar:
    """Counts working days: Monday–Friday, minus public holidays, plus swapped Saturdays."""

    name = "holidays-VN"

    def __init__(self) -> None:
        self._days = holidays.country_holidays("VN")

    def is_working_day(self, day: date) -> bool:
        return bool(self._days.is_working_day(day))

    def add_working_days(self, start: date, count: int) -> date:
        """The ``count``-th working day after ``start`` (``start`` itself is not counted)."""
        if count <= 0:
            return start
        return self._days.get_nth_working_day(start, count)

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end``; negative when end < start."""
        if end == start:
            return 0
        sign = 1 if end > start else -1
        low, high = sorted((start, end))
        count = sum(
            1 for n in range(1, (high - low).days + 1) if self.is_working_day(low + timedelta(n))
        )
        return sign * count


@lru_cache(maxsize=1)
def default_calendar() -> WorkingCalendar:
    return WorkingCalendar()
