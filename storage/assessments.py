"""Yearly assessment rows and the member cases screening reads them for."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from memberflow.storage.chain import utc_now
from memberflow.storage.database import Database
from memberflow.storage.schema import assessments, cases, organizations, people
from sqlalchemy import Connection, func, select

CHUNK = 1000  # ids per IN list: well inside every driver's parameter limit
# What an assessment says (who recorded it, and when, aside).
ASSESSED = ("person_id", "year", "score", "rating", "absence_months", "unpaid_dues_months",
            "no_progress_months")


class Assessments:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, rows: Sequence[dict[str, Any]], recorded_by: str) -> int:
        """Add every row in one transaction (a yearly import is all or nothing)."""
        now = utc_now()
        with self.db.write() as conn:
            if rows:
                conn.execute(assessments.insert(),
                             [{**row, "recorded_by": recorded_by, "recorded_at": now} for row in rows])
        return len(rows)

    def record_new(self, rows: Sequence[dict[str, Any]], recorded_by: str) -> tuple[int, int]:
        """Add, in one transaction, every row that differs from the newest row recorded for
        its person and year; returns (added, already recorded). A row equal to the newest
        one adds nothing, so a file imported again is not recorded twice. The comparison is
        made inside the writing transaction: on PostgreSQL the people's rows are locked first
        (in id order), so two imports of one file at once add it once."""
        now = utc_now()
        person_ids = sorted({row["person_id"] for row in rows})
        with self.db.write() as conn:
            if not self.db.is_sqlite:
                for start in range(0, len(person_ids), CHUNK):
                    conn.execute(select(people.c.id).where(
                        people.c.id.in_(person_ids[start:start + CHUNK]))
                        .order_by(people.c.id).with_for_update())
            years = [row["year"] for row in rows]
            newest = self._current(conn, person_ids, min(years, default=0), max(years, default=0))
            new = [row for row in rows
                   if not _same(row, newest.get(row["person_id"], {}).get(row["year"]))]
            if new:
                conn.execute(assessments.insert(),
                             [{**row, "recorded_by": recorded_by, "recorded_at": now} for row in new])
        return len(new), len(rows) - len(new)

    def history(self, person_id: int) -> list[dict[str, Any]]:
        """Every row for the person, corrections included, by year then as recorded."""
        query = select(assessments).where(assessments.c.person_id == person_id) \
            .order_by(assessments.c.year, assessments.c.id)
        with self.db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def current(self, person_ids: Sequence[int], first_year: int,
                last_year: int) -> dict[int, dict[int, dict[str, Any]]]:
        """The newest row per person and year in the range: {person: {year: row}}."""
        with self.db.connect() as conn:
            return self._current(conn, person_ids, first_year, last_year)

    @staticmethod
    def _current(conn: Connection, person_ids: Sequence[int], first_year: int,
                 last_year: int) -> dict[int, dict[int, dict[str, Any]]]:
        found: dict[int, dict[int, dict[str, Any]]] = {}
        for start in range(0, len(person_ids), CHUNK):
            newest = select(func.max(assessments.c.id)).where(
                assessments.c.person_id.in_(person_ids[start:start + CHUNK]),
                assessments.c.year.between(first_year, last_year),
            ).group_by(assessments.c.person_id, assessments.c.year)
            for row in conn.execute(select(assessments).where(assessments.c.id.in_(newest))):
                found.setdefault(row.person_id, {})[row.year] = dict(row._mapping)
        return found

    def cases_in(self, states: Sequence[str],
                 organization_ids: Sequence[int] | None) -> Iterator[dict[str, Any]]:
        """Cases in any of the states (optionally under some organizations), with the
        person's name and the organization's code, ordered by organization then case."""
        query = (select(cases.c.id, cases.c.person_id, cases.c.organization_id, cases.c.state,
                        cases.c.definition_id, cases.c.facts, people.c.full_name,
                        organizations.c.code.label("organization"))
                 .join(people, people.c.id == cases.c.person_id)
                 .join(organizations, organizations.c.id == cases.c.organization_id)
                 .where(cases.c.state.in_(states))
                 .order_by(organizations.c.code, cases.c.id))
        if organization_ids is not None:
            query = query.where(cases.c.organization_id.in_(organization_ids))
        with self.db.connect() as conn:
            for row in conn.execute(query):
                yield dict(row._mapping)


def _same(row: dict[str, Any], stored: dict[str, Any] | None) -> bool:
    return stored is not None and all(row[name] == stored[name] for name in ASSESSED)
