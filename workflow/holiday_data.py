"""The holiday data deadlines are counted on: a snapshot of the ``holidays`` package's
Vietnamese day list (public holidays with their Vietnamese and English names, and the
weekend days worked in exchange), identified by a sha256 of the list.

A new release of the package may add or move days (0.109 knows 02/05/2025, 31/08/2026 and
24/11/2026, which 0.60 does not). So the package is read only to take a snapshot: when a
database gets its first one (schema revision 0008) and when an administrator runs
``memberflow calendar refresh`` (and by ``workdays.package_holidays`` for code that runs
without a database). Every deadline of a database is counted on the snapshot stored in it,
and the same database gives the same deadlines whatever pip installed.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from importlib import metadata
from typing import Any

from memberflow.i18n import _

COUNTRY = "VN"
PACKAGE = "holidays"
FIRST_YEAR = 1990
YEARS_AHEAD = 5  # a snapshot covers FIRST_YEAR to this many years after the year it is taken
# The package lists weekend days worked in exchange for a day off without a name.
SWAPPED_WORKING_DAY = {"vi": "Ngày làm bù", "en": "Swapped working day"}


MONTH_FIRST = re.compile(r"\b(\d{2})/(\d{2})/(\d{4})\b")


@dataclass(frozen=True)
class HolidayDay:
    """A day the package lists: a public holiday (working False) or a swapped working day."""

    day: date
    working: bool
    name_vi: str
    name_en: str

    def name(self, lang: str) -> str:
        """The name as shown. The package names days in English only as en_US, with any date in
        it month first ("substituted from 08/22/2026"); memberflow shows every date dd/mm/yyyy,
        so the date is turned round here and the stored name (which its sha256 covers) stays."""
        return self.name_vi if lang == "vi" else MONTH_FIRST.sub(r"\2/\1/\3", self.name_en)


@dataclass(frozen=True)
class HolidayData:
    """A day list for the years ``first_year``..``last_year``, as one package version made it."""

    package_version: str
    first_year: int
    last_year: int
    days: tuple[HolidayDay, ...]
    snapshot: int | None = None  # the stored snapshot's number; None: generated, not stored
    recorded: Mapping[str, Any] = field(default_factory=dict)  # who stored it, when

    @cached_property
    def digest(self) -> str:
        return day_list_digest(self.days)

    @cached_property
    def by_day(self) -> dict[date, HolidayDay]:
        return {d.day: d for d in self.days}

    @cached_property
    def _by_year(self) -> dict[int, list[HolidayDay]]:
        years: dict[int, list[HolidayDay]] = {}
        for listed in self.days:
            years.setdefault(listed.day.year, []).append(listed)
        return years

    def in_year(self, year: int) -> list[HolidayDay]:
        return self._by_year.get(year, [])

    def describe(self) -> str:
        stored = _("snapshot {snapshot}, ").format(
                     snapshot=self.snapshot) if self.snapshot is not None else ""
        return (f"{stored}holidays {self.package_version}, {self.first_year}–{self.last_year}, "
                f"sha256 {self.digest[:12]}")


def day_list_digest(days: Iterable[HolidayDay]) -> str:
    """sha256 of the day list in a fixed text form (schema revision 0008 computes the same)."""
    rows = [[d.day.isoformat(), bool(d.working), d.name_vi, d.name_en]
            for d in sorted(days, key=lambda d: d.day)]
    text = json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def installed_version() -> str | None:
    """The version of the package pip installed (read from its metadata: no import)."""
    try:
        return metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        return None


def years_to_cover(this_year: int, first_year: int = FIRST_YEAR) -> tuple[int, int]:
    return first_year, this_year + YEARS_AHEAD


def generate(first_year: int, last_year: int) -> HolidayData:
    """The installed package's day list for the years (the only place it is read)."""
    import holidays

    # A substituted day off or a swapped Saturday may fall in the year before or after the
    # one whose holiday it belongs to: generate one year more on each side, keep the range.
    years = range(first_year - 1, last_year + 2)
    vi = holidays.country_holidays(COUNTRY, years=years, language="vi")
    en = holidays.country_holidays(COUNTRY, years=years, language="en_US")
    listed = sorted(d for d in set(vi) | set(vi.weekend_workdays) if first_year <= d.year <= last_year)
    days = tuple(HolidayDay(d, bool(vi.is_working_day(d)), vi.get(d) or SWAPPED_WORKING_DAY["vi"],
                            en.get(d) or SWAPPED_WORKING_DAY["en"]) for d in listed)
    return HolidayData(holidays.__version__, first_year, last_year, days)


def stored_holiday_data(snapshot: Mapping[str, Any], days: Iterable[Mapping[str, Any]]) -> HolidayData:
    """A stored snapshot; its day list must still have the sha256 recorded with it."""
    from memberflow.errors import AuditFailed

    data = HolidayData(
        snapshot["package_version"], snapshot["first_year"], snapshot["last_year"],
        tuple(HolidayDay(d["day"], bool(d["working"]), d["name_vi"], d["name_en"])
              for d in sorted(days, key=lambda d: d["day"])),
        snapshot["id"], {"by": snapshot["created_by"], "at": snapshot["created_at"]})
    if data.digest != snapshot["digest"]:
        raise AuditFailed(_("the holiday data of calendar snapshot {id} does not match its recorded sha256 "
                            "{digest}: it was altered in the database; deadlines cannot be counted "
                            "on it").format(id=snapshot['id'], digest=snapshot['digest'][:12]))
    return data


def changes_by_year(snapshots: Iterable[Mapping[str, Any]]) -> dict[int, int]:
    """How many refreshes changed each year's days (each is a new version of that year)."""
    counts: dict[int, int] = {}
    for snapshot in snapshots:
        for year in json.loads(snapshot["changes"]).get("years", []):
            counts[int(year)] = counts.get(int(year), 0) + 1
    return counts


@dataclass(frozen=True)
class DayChange:
    """One difference between two day lists: added, removed, changed (working or not) or renamed."""

    kind: str
    day: date
    before: HolidayDay | None
    after: HolidayDay | None


def compare(before: HolidayData, after: HolidayData) -> list[DayChange]:
    old, new = before.by_day, after.by_day
    found = []
    for day in sorted(old.keys() | new.keys()):
        was, now = old.get(day), new.get(day)
        if was == now:
            continue
        if was is None or now is None:
            kind = "added" if was is None else "removed"
        else:
            kind = "changed" if was.working != now.working else "renamed"
        found.append(DayChange(kind, day, was, now))
    return found
