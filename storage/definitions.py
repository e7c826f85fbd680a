"""Definition versions: immutable, content-addressed by sha256, numbered per name."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from .chain import utc_now
from .database import Database
from .errors import Missing
from .schema import definition_versions


class DefinitionVersions:
    def __init__(self, db: Database) -> None:
        self.db = db

    def store(self, name: str, sha256: str, source: str, file: str) -> tuple[int, bool]:
        """Store a version unless identical content is stored already; returns (id, is_new)."""
        with self.db.connect() as conn:
            found = conn.execute(select(definition_versions.c.id)
                                 .where(definition_versions.c.sha256 == sha256)).scalar()
            if found is not None:
                return found, False
            number = conn.execute(select(func.coalesce(func.max(definition_versions.c.version), 0))
                                  .where(definition_versions.c.name == name)).scalar() + 1
            new_id = conn.execute(definition_versions.insert().values(
                name=name, version=number, sha256=sha256, source=source, file=file,
                created_at=utc_now())).inserted_primary_key[0]
            return new_id, True

    def latest(self, name: str) -> dict[str, Any]:
        query = (select(definition_versions).where(definition_versions.c.name == name)
                 .order_by(definition_versions.c.version.desc()).limit(1))
        with self.db.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise Missing(f"no definition named {name} is stored; run 'memberflow init'")
        return dict(row._mapping)

    def by_id(self, definition_id: int) -> dict[str, Any]:
        return self._one(definition_versions.c.id == definition_id,
                         f"definition version #{definition_id} not found")

    def by_sha(self, sha256: str) -> dict[str, Any]:
        return self._one(definition_versions.c.sha256 == sha256,
                         f"definition version {sha256[:12]} is not stored")

    def _one(self, condition: Any, missing: str) -> dict[str, Any]:
        with self.db.connect() as conn:
            row = conn.execute(select(definition_versions).where(condition)).first()
        if row is None:
            raise Missing(missing)
        return dict(row._mapping)

    def all(self) -> list[dict[str, Any]]:
        cols = [c for c in definition_versions.c if c.name != "source"]
        with self.db.connect() as conn:
            rows = conn.execute(select(*cols).order_by(definition_versions.c.name,
                                                       definition_versions.c.version))
            return [dict(r._mapping) for r in rows]
