"""Changing the working-day calendar: an administrator's day, a yearly file, a refresh of the
holiday data. Each change and the stored deadlines it moves are one transaction.

A case row keeps its next deadline (``due_on``, with the move and the calendar version it
was counted on) so that ``due`` and ``tick`` can find deadlines by date; ``case show``
counts them from the case's facts. For both to give one answer, a calendar change counts
again, in its own transaction, every stored deadline it can move: a change on day X moves
only deadlines due on or after X (a deadline is the n-th working day after its start, and
days after it do not count). Deadlines due earlier in a year whose version changed get the
new version without being counted again. A case's own version is not touched: the stored
deadline is an index, not the case's state, so officers' moves are not made to conflict.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from memberflow.app.administration import Administration
from memberflow.app.service import stored_calendar
from memberflow.errors import BadInput
from memberflow.i18n import _
from memberflow.workflow.calendar_files import CalendarDay, CalendarFile, load_calendar_file
from memberflow.workflow.dates import format_date, today
from memberflow.workflow.holiday_data import (
    COUNTRY,
    DayChange,
    HolidayData,
    compare,
    generate,
    installed_version,
    years_to_cover,
)
from memberflow.workflow.inputs import clean_text
from memberflow.workflow.workdays import Override, WorkingCalendar

if TYPE_CHECKING:
    from memberflow.app.application import Application
    from memberflow.app.principal import Principal
    from memberflow.app.service import Service
    from memberflow.storage.calendar import CalendarChange
    from memberflow.storage.cases import DueRow, StoredDue


@dataclass(frozen=True)
class MovedDeadline:
    case_id: int
    before: StoredDue
    after: StoredDue | None


@dataclass
class Recounted:
    """What a calendar change did to the stored deadlines."""

    moved: list[MovedDeadline] = field(default_factory=list)
    counted: int = 0  # deadlines counted again


@dataclass
class Refresh:
    """A refresh of the holiday data: the snapshot in force, the installed package's day
    list, how they differ and the open deadlines that move."""

    before: HolidayData
    after: HolidayData
    days: list[DayChange]
    recounted: Recounted
    applied: bool

    @property
    def nothing_to_do(self) -> bool:
        return not self.days and self.before.package_version == self.after.package_version \
            and (self.before.first_year, self.before.last_year) == \
            (self.after.first_year, self.after.last_year)


class CalendarAdministration:
    def __init__(self, service: Service) -> None:
        self.service = service
        self.store = service.store

    def set_day(self, actor: str, day: date, working: bool, reason: str) -> Recounted:
        """An administrator's override of one day (a swapped working Saturday, an extra day off)."""
        Administration(self.store).require_admin(actor)
        if not date(1990, 1, 1) <= day <= date(today().year + 5, 12, 31):
            raise BadInput(_("{day} is outside the calendar (1990 to five years ahead)").format(
                               day=format_date(day)))
        reason = clean_text(reason, "reason", 500)
        with self.store.calendar_change() as change:
            before = stored_calendar(change.state())
            change.add_days([(day, working, reason)], actor)
            after = before.with_overrides([Override(day, working, reason, actor)])
            recounted = self._recount_changed(change, before, after)
        self.service.engine.calendar = after
        return recounted

    def load_file(self, actor: str | None, path: Path) -> tuple[CalendarFile, list[CalendarDay], Recounted]:
        """Apply a yearly calendar file (administrators; ``None``: the bundled seed at init).
        Only days the calendar does not already count that way are added, and returned."""
        if actor is not None:
            Administration(self.store).require_admin(actor)
        loaded = load_calendar_file(path)
        author = actor or f"seed {path.name}"
        with self.store.calendar_change() as change:
            before = stored_calendar(change.state())
            added = loaded.changes(before)
            if actor is None:  # the bundled seed never undoes a day an administrator has set
                added = [d for d in added if d.day not in before.overrides]
            days = [(d.day, d.working, f"{d.reason} ({loaded.decision})") for d in added]
            change.add_days(days, author)
            after = before.with_overrides(Override(*day, author) for day in days)
            recounted = self._recount_changed(change, before, after)
        self.service.engine.calendar = after
        return loaded, added, recounted

    def refresh(self, actor: str, dry_run: bool = False) -> Refresh:
        """Compare the installed ``holidays`` package's day list with the snapshot in force;
        unless ``dry_run``, store it as the new snapshot, recorded with who and when, and
        count again the open deadlines it moves."""
        Administration(self.store).require_admin(actor)
        current = self.service.engine.calendar.holidays
        first, last = years_to_cover(today().year, current.first_year)
        generated = generate(first, max(last, current.last_year))
        with self.store.calendar_change(dry_run) as change:
            before = stored_calendar(change.state())
            days = compare(before.holidays, generated)
            refresh = Refresh(before.holidays, generated, days, Recounted(), applied=False)
            if refresh.nothing_to_do:
                return refresh
            years = sorted({d.day.year for d in days if d.kind != "renamed"})
            after = before.with_holidays(generated, years)
            refresh.recounted = self._recount_changed(change, before, after)
            if dry_run:
                return refresh
            number = change.add_snapshot(_snapshot_record(refresh, years, actor),
                                         [{"day": d.day, "working": d.working, "name_vi": d.name_vi,
                                           "name_en": d.name_en} for d in generated.days])
        stored = replace(generated, snapshot=number, recorded={"by": actor})
        self.service.engine.calendar = after.with_holidays(stored, [])
        refresh.after, refresh.applied = stored, True
        return refresh

    def recount_stale(self) -> Recounted:
        """Count again the stored deadlines that do not carry the current version of their
        year: those stored before versions were recorded (a database upgraded from before
        revision 0008), or by a move that raced a calendar change."""
        with self.store.calendar_change() as change:
            calendar = stored_calendar(change.state())
            first, last = change.due_span()
            if first is None or last is None:
                return Recounted()
            current = [calendar.version(year) for year in range(first.year, last.year + 1)]
            recounted = Recounted()

            def counted(row: DueRow) -> StoredDue | None:
                recounted.counted += 1
                return self.service.due_on_calendar(row.definition_id, row.state, row.facts, calendar)

            self._recount(change, change.due_rows(labelled_otherwise=current), counted, recounted)
        self.service.engine.calendar = calendar
        return recounted

    def _recount_changed(self, change: CalendarChange, before: WorkingCalendar,
                         after: WorkingCalendar) -> Recounted:
        """One pass over the stored deadlines a change concerns, in case id order (so that on
        PostgreSQL it locks them in the order a batch of moves does, and the two never
        deadlock): those due from the first changed day on are counted again; those due
        earlier in a year whose version changed only get the new version."""
        recounted = Recounted()
        exceptions = before.exceptions().keys() | after.exceptions().keys()
        moved_from = min((d for d in exceptions if before.is_working_day(d) != after.is_working_day(d)),
                         default=None)
        first_due, last_due = change.due_span()
        if first_due is None or last_due is None:
            return recounted
        relabelled = [y for y in range(first_due.year, last_due.year + 1)
                      if before.version(y) != after.version(y)]
        starts = ([date(relabelled[0], 1, 1)] if relabelled else []) + ([moved_from] if moved_from else [])
        if not starts:
            return recounted

        def counted(row: DueRow) -> StoredDue | None:
            assert row.due is not None
            if moved_from is not None and row.due.on >= moved_from:
                recounted.counted += 1
                return self.service.due_on_calendar(row.definition_id, row.state, row.facts, after)
            if row.due.calendar == before.version(row.due.on.year):
                return row.due._replace(calendar=after.version(row.due.on.year))
            return row.due  # already stored on another version: ``recount_stale`` counts it

        self._recount(change, change.due_rows(since=min(starts)), counted, recounted)
        return recounted

    def _recount(self, change: CalendarChange, chunks: Iterator[list[DueRow]],
                 counted: Callable[[DueRow], StoredDue | None], recounted: Recounted) -> None:
        for chunk in chunks:
            changed: list[tuple[DueRow, StoredDue | None]] = []
            for row in chunk:
                due = counted(row)
                if due == row.due:
                    continue
                changed.append((row, due))
                if row.due is not None and (due is None or due[:2] != row.due[:2]):
                    recounted.moved.append(MovedDeadline(row.id, row.due, due))
            if not change.dry_run:
                change.set_due(changed)


def _snapshot_record(refresh: Refresh, years: Iterable[int], actor: str) -> dict[str, object]:
    kinds = [d.kind for d in refresh.days]
    changes = {"years": list(years), "from_snapshot": refresh.before.snapshot,
               "from_package_version": refresh.before.package_version,
               **{kind: kinds.count(kind) for kind in ("added", "removed", "changed", "renamed")},
               "deadlines_moved": len(refresh.recounted.moved)}
    return {"country": COUNTRY, "package_version": refresh.after.package_version,
            "first_year": refresh.after.first_year, "last_year": refresh.after.last_year,
            "digest": refresh.after.digest, "changes": json.dumps(changes), "created_by": actor}


def calendar_warnings(calendar: WorkingCalendar, this_year: int) -> list[str]:
    """Why an administrator should refresh the holiday data, if they should; deadlines keep
    being counted on the snapshot in force until they do."""
    data, installed = calendar.holidays, installed_version()
    if installed != data.package_version:
        return [_("deadlines are counted on the holiday data of holidays {package_version} (snapshot "
                  "{snapshot}), but holidays {installed} is installed: an administrator should run "
                  "'memberflow calendar refresh --dry-run' to see what would change, then "
                  "'memberflow calendar refresh'").format(
                    package_version=data.package_version, snapshot=data.snapshot,
                    installed=installed or _('(none)'))]
    if data.last_year <= this_year:
        return [_("the holiday data ends with {last_year}: an administrator should run 'memberflow "
                  "calendar refresh' to extend it").format(last_year=data.last_year)]
    return []


@dataclass(frozen=True)
class CalendarYear:
    """A year of the calendar as shown: its days, its version, the holiday data in force."""

    year: int
    version: str
    holidays: HolidayData
    days: list[dict[str, object]]

    @property
    def covered(self) -> bool:
        return self.holidays.first_year <= self.year <= self.holidays.last_year


class CalendarOperations:
    """The calendar for a principal: anyone with a grant reads it; administrators change it."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.access = app.access

    @property
    def _administration(self) -> CalendarAdministration:
        return CalendarAdministration(self.app.service)

    @property
    def calendar(self) -> WorkingCalendar:
        return self.app.service.engine.calendar

    def warnings(self) -> list[str]:
        return calendar_warnings(self.calendar, today().year)

    def version(self, year: int) -> str:
        return self.calendar.version(year)

    def year(self, principal: Principal, year: int, lang: str) -> CalendarYear:
        self.access.require_any_grant(principal)
        calendar = self.calendar
        return CalendarYear(year, calendar.version(year), calendar.holidays, calendar.year(year, lang))

    def set_day(self, principal: Principal, day: date, working: bool, reason: str) -> Recounted:
        return self._administration.set_day(principal.username, day, working, reason)

    def load_file(self, principal: Principal | None,
                  path: Path) -> tuple[CalendarFile, list[CalendarDay], Recounted]:
        """A yearly file (``None``: the bundled seed, applied by ``init``)."""
        return self._administration.load_file(principal.username if principal else None, path)

    def refresh(self, principal: Principal, dry_run: bool) -> Refresh:
        return self._administration.refresh(principal.username, dry_run)

    def recount_stale(self) -> Recounted:
        """Deadlines stored before their calendar version was, counted again (an upgrade)."""
        return self._administration.recount_stale()

