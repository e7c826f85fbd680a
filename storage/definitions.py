"""Definition versions: immutable, content-addressed by sha256, numbered per name.

A version is ``published`` (new cases may start on it) or ``pending`` until a second
administrator approves it; its text never changes once stored.
"""

from __future__ import annotations

from typing import Any

from memberflow.errors import Conflict, NotFound
from memberflow.i18n import _
from memberflow.storage.chain import utc_now
from memberflow.storage.database import Database
from memberflow.storage.schema import definition_versions
from sqlalchemy import func, select, update

PUBLISHED, PENDING = "published", "pending"
_LISTED = [c for c in definition_versions.c if c.name != "source"]


class DefinitionVersions:
    def __init__(self, db: Database) -> None:
        self.db = db

    def store(self, name: str, sha256: str, source: str, file: str, status: str = PUBLISHED,
              author: str | None = None, comment: str | None = None) -> tuple[int, bool]:
        """Store a version unless identical content is stored already; returns (id, is_new)."""
        with self.db.write() as conn:
            found = conn.execute(select(definition_versions.c.id)
                                 .where(definition_versions.c.sha256 == sha256)).scalar()
            if found is not None:
                return found, False
            number = conn.execute(select(func.coalesce(func.max(definition_versions.c.version), 0))
                                  .where(definition_versions.c.name == name)).scalar() + 1
            new_id = conn.execute(definition_versions.insert().values(
                name=name, version=number, sha256=sha256, source=source, file=file,
                created_at=utc_now(), status=status, author=author,
                comment=comment)).inserted_primary_key[0]
            return new_id, True

    def approve(self, version_id: int, approver: str) -> None:
        with self.db.write() as conn:
            changed = conn.execute(
                update(definition_versions)
                .where(definition_versions.c.id == version_id,
                       definition_versions.c.status == PENDING)
                .values(status=PUBLISHED, approved_by=approver, approved_at=utc_now())).rowcount
        if changed != 1:
            raise Conflict(_("definition version #{version_id} is no longer pending").format(
                               version_id=version_id))

    def latest(self, name: str) -> dict[str, Any]:
        """The newest published version: the one new cases start on."""
        query = (select(definition_versions)
                 .where(definition_versions.c.name == name,
                        definition_versions.c.status == PUBLISHED)
                 .order_by(definition_versions.c.version.desc()).limit(1))
        with self.db.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(_("no published definition named {name} is stored; run 'memberflow init'").format(
                               name=name))
        return dict(row._mapping)

    def numbered(self, name: str, version: int) -> dict[str, Any]:
        return self._one((definition_versions.c.name == name)
                         & (definition_versions.c.version == version),
                         _("definition {name} has no version {version}").format(name=name, version=version))

    def by_id(self, definition_id: int) -> dict[str, Any]:
        return self._one(definition_versions.c.id == definition_id,
                         _("definition version #{definition_id} not found").format(
                             definition_id=definition_id))

    def find(self, sha256: str) -> dict[str, Any] | None:
        """The version with this content, if one is stored."""
        with self.db.connect() as conn:
            row = conn.execute(select(definition_versions)
                               .where(definition_versions.c.sha256 == sha256)).first()
        return dict(row._mapping) if row else None

    def by_sha(self, sha256: str) -> dict[str, Any]:
        return self._one(definition_versions.c.sha256 == sha256,
                         _("definition version {sha256} is not stored").format(sha256=sha256[:12]))

    def _one(self, condition: Any, missing: str) -> dict[str, Any]:
        with self.db.connect() as conn:
            row = conn.execute(select(definition_versions).where(condition)).first()
        if row is None:
            raise NotFound(missing)
        return dict(row._mapping)

    def all(self, name: str | None = None) -> list[dict[str, Any]]:
        """Every version without its text, oldest first (of one definition when named)."""
        query = select(*_LISTED).order_by(definition_versions.c.name, definition_versions.c.version)
        if name is not None:
            query = query.where(definition_versions.c.name == name)
        with self.db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
