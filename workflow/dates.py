"""Business-date arithmetic: whole calendar months, Vietnamese date format, today in Vietnam.

The rules count age, probation and waiting periods in calendar months, and procedural
deadlines in working days (see ``workdays``); both live here so guards and deadlines agree.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta, timezone

from memberflow.errors import BadInput
from memberflow.i18n import _, ngettext

VIETNAM = timezone(timedelta(hours=7), "ICT")
EARLIEST = date(1900, 1, 1)

_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$", re.ASCII)
_VN = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$", re.ASCII)


def today() -> date:
    """The business date today, as an office in Vietnam sees it."""
    return datetime.now(VIETNAM).date()


def parse_date(text: str, what: str = "date") -> date:
    """Accept ISO ``2026-03-12`` or Vietnamese ``12/03/2026``; anything else is bad input."""
    raw = text.strip()
    if m := _ISO.match(raw):
        year, month, day = (int(g) for g in m.groups())
    elif m := _VN.match(raw):
        day, month, year = (int(g) for g in m.groups())
    else:
        raise BadInput(_("{what} {text!r} is not a date; use dd/mm/yyyy or yyyy-mm-dd").format(
                           what=what, text=text))
    try:
        value = date(year, month, day)
    except ValueError as exc:
        raise BadInput(_("{what} {text!r} does not exist ({exc})").format(
                           what=what, text=text, exc=exc)) from None
    if value < EARLIEST:
        raise BadInput(_("{what} {text!r} is before {earliest}").format(
                           what=what, text=text, earliest=format_date(EARLIEST)))
    return value


def format_date(value: date | None) -> str:
    """Dates are shown the Vietnamese way: dd/mm/yyyy."""
    return value.strftime("%d/%m/%Y") if value else "-"


def local_time(recorded_at: str) -> datetime:
    """A stored UTC timestamp (ISO 8601) as the time it was in Vietnam."""
    return datetime.fromisoformat(recorded_at.replace("Z", "+00:00")).astimezone(VIETNAM)


def format_timestamp(recorded_at: str) -> str:
    return local_time(recorded_at).strftime("%d/%m/%Y %H:%M")


def add_months(start: date, months: int) -> date:
    """Same day-of-month ``months`` later, clamped to the month's end (31/01 + 1 → 28/02)."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def whole_months_between(start: date, end: date) -> int:
    """Completed calendar months from ``start`` to ``end`` (an age counted in months)."""
    months = (end.year - start.year) * 12 + (end.month - start.month)
    if add_months(start, months) > end:
        months -= 1
    return months


def describe_months(months: int) -> str:
    years, rest = divmod(months, 12)
    parts = [ngettext("{count} year", "{count} years", years).format(count=years)] if years else []
    if rest or not years:
        parts.append(ngettext("{count} month", "{count} months", rest).format(count=rest))
    return " ".join(parts)
