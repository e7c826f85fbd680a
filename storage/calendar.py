"""Working-day overrides: stored as added, in order; the newest entry for a day wins."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select

from .chain import utc_now
from .database import Database
from .schema import calendar_days


class CalendarDays:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, day: date, working: bool, reason: str, author: str) -> None:
        with self.db.write() as conn:
            conn.execute(calendar_days.insert().values(day=day, working=working, reason=reason,
                                                       author=author, created_at=utc_now()))

    def add_many(self, days: list[tuple[date, bool, str]], author: str) -> None:
        """Several days in one transaction: a yearly file is applied whole or not at all."""
        if not days:
            return
        now = utc_now()
        with self.db.write() as conn:
            conn.execute(calendar_days.insert(), [
                {"day": day, "working": working, "reason": reason, "author": author, "created_at": now}
                for day, working, reason in days])

    def entries(self) -> list[dict[str, Any]]:
        """Every override ever set, oldest first."""
        with self.db.connect() as conn:
            rows = conn.execute(select(calendar_days).order_by(calendar_days.c.id))
            return [dict(r._mapping) for r in rows]
