"""Yearly assessment rows and the member cases screening reads them for."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import func, select

from .chain import utc_now
from .database import Database
from .schema import assessments, cases, organizations, people

CHUNK = 1000  # ids per IN list: well inside every driver's parameter limit


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

    def history(self, person_id: int) -> list[dict[str, Any]]:
        """Every row for the person, corrections included, by year then as recorded."""
        query = select(assessments).where(assessments.c.person_id == person_id) \
            .order_by(assessments.c.year, assessments.c.id)
        with self.db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def current(self, person_ids: Sequence[int], first_year: int,
                last_year: int) -> dict[int, dict[int, dict[str, Any]]]:
        """The newest row per person and year in the range: {person: {year: row}}."""
        found: dict[int, dict[int, dict[str, Any]]] = {}
        with self.db.connect() as conn:
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
