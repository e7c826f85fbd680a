"""The working-day calendar as stored: holiday data snapshots and administrators' overrides.

Everything here is only ever added to (the database refuses UPDATE and DELETE): an override
is a new row, the newest for a day wins; a refresh of the holiday data is a new snapshot,
the newest applies. So the calendar in force at any time can be told.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from memberflow.errors import Unavailable
from memberflow.i18n import _
from memberflow.storage.cases import Cases, DueRow, StoredDue
from memberflow.storage.chain import utc_now
from memberflow.storage.database import Database
from memberflow.storage.schema import calendar_days, holiday_days, holiday_snapshots
from sqlalchemy import Connection, select


@dataclass(frozen=True)
class CalendarState:
    """The calendar as one transaction read it."""

    overrides: list[dict[str, Any]]  # every override, oldest first
    snapshot: dict[str, Any]  # the snapshot in force (the newest)
    days: list[dict[str, Any]]  # its days
    snapshots: list[dict[str, Any]]  # every snapshot's record, oldest first


def read_state(conn: Connection) -> CalendarState:
    snapshots = [dict(r._mapping) for r in
                 conn.execute(select(holiday_snapshots).order_by(holiday_snapshots.c.id))]
    if not snapshots:
        raise Unavailable(_("the database holds no holiday data; run 'memberflow db upgrade'"))
    newest = snapshots[-1]
    days = [dict(r._mapping) for r in conn.execute(
        select(holiday_days.c.day, holiday_days.c.working, holiday_days.c.name_vi,
               holiday_days.c.name_en)
        .where(holiday_days.c.snapshot_id == newest["id"]).order_by(holiday_days.c.day))]
    overrides = [dict(r._mapping) for r in conn.execute(select(calendar_days).order_by(calendar_days.c.id))]
    return CalendarState(overrides, newest, days, snapshots)


class CalendarDays:
    def __init__(self, db: Database) -> None:
        self.db = db

    def state(self) -> CalendarState:
        with self.db.connect() as conn:
            return read_state(conn)

    def entries(self) -> list[dict[str, Any]]:
        """Every override ever set, oldest first."""
        with self.db.connect() as conn:
            rows = conn.execute(select(calendar_days).order_by(calendar_days.c.id))
            return [dict(r._mapping) for r in rows]

    @contextmanager
    def change(self, cases: Cases, dry_run: bool = False) -> Iterator[CalendarChange]:
        """One calendar change and the stored deadlines it moves, in one write transaction;
        ``dry_run``: a read transaction that takes no write lock and may write nothing."""
        with (self.db.connect() if dry_run else self.db.write()) as conn:
            yield CalendarChange(conn, cases, dry_run)


class CalendarChange:
    """The reads and writes of one calendar change, all on its transaction."""

    def __init__(self, conn: Connection, cases: Cases, dry_run: bool) -> None:
        self._conn, self._cases, self.dry_run = conn, cases, dry_run

    def state(self) -> CalendarState:
        return read_state(self._conn)

    def _writing(self) -> Connection:
        if self.dry_run:
            raise RuntimeError("a dry run writes nothing")
        return self._conn

    def add_days(self, days: Sequence[tuple[date, bool, str]], author: str) -> None:
        if days:
            now = utc_now()
            self._writing().execute(calendar_days.insert(), [
                {"day": day, "working": working, "reason": reason, "author": author,
                 "created_at": now} for day, working, reason in days])

    def add_snapshot(self, record: Mapping[str, Any], days: Sequence[Mapping[str, Any]]) -> int:
        """Store a snapshot of the holiday data (``record``: country, package_version,
        first_year, last_year, digest, changes, created_by) with its days; returns its number."""
        conn = self._writing()
        snapshot_id = conn.execute(holiday_snapshots.insert().values(
            **record, created_at=utc_now())).inserted_primary_key[0]
        conn.execute(holiday_days.insert(), [{"snapshot_id": snapshot_id, **day} for day in days])
        return int(snapshot_id)

    def due_rows(self, since: date | None = None,
                 labelled_otherwise: Sequence[str] | None = None) -> Iterator[list[DueRow]]:
        return self._cases.due_rows(self._conn, since, labelled_otherwise, lock=not self.dry_run)

    def due_span(self) -> tuple[date | None, date | None]:
        return self._cases.due_span(self._conn)

    def set_due(self, changed: Sequence[tuple[DueRow, StoredDue | None]]) -> None:
        if changed:
            self._cases.set_due(self._writing(), changed)
