"""Organizations (a tree), people, users and their role grants per organization."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from memberflow.errors import Duplicate, NotFound
from memberflow.i18n import _
from memberflow.storage.chain import utc_now
from memberflow.storage.database import Database
from memberflow.storage.schema import cases, organizations, people, role_grants, users
from sqlalchemy import Connection, bindparam, func, literal, or_, select, text, update
from sqlalchemy.exc import IntegrityError


def _ancestors_query() -> Any:
    chain = (select(organizations.c.id, organizations.c.parent_id, literal(0).label("depth"))
             .where(organizations.c.id == bindparam("org_id")).cte(recursive=True))
    chain = chain.union_all(
        select(organizations.c.id, organizations.c.parent_id, chain.c.depth + 1)
        .where(organizations.c.id == chain.c.parent_id))
    return select(chain.c.id).order_by(chain.c.depth)


_ANCESTORS = _ancestors_query()
_ROLES = (select(role_grants.c.role).join(users, users.c.id == role_grants.c.user_id)
          .where(users.c.username == bindparam("username"),
                 or_(role_grants.c.organization_id.in_(bindparam("orgs", expanding=True)),
                     role_grants.c.organization_id.is_(None))))
_PERSON = select(people).where(people.c.id == bindparam("person_id"))


class Directory:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._ancestors: dict[int, list[int]] = {}

    # -- organizations ---------------------------------------------------------------
    def add_organization(self, code: str, name: str, kind: str, parent: str | None) -> int:
        with self.db.connect() as conn:
            parent_id = self._org_id(conn, parent) if parent else None
            try:
                return conn.execute(organizations.insert().values(
                    code=code, name=name, kind=kind, parent_id=parent_id, created_at=utc_now()
                )).inserted_primary_key[0]
            except IntegrityError:
                raise Duplicate(_("organization {code} already exists").format(code=code)) from None

    def organization(self, code: str) -> dict[str, Any]:
        with self.db.connect() as conn:
            row = conn.execute(select(organizations).where(organizations.c.code == code)).first()
        if row is None:
            raise NotFound(_("organization {code} not found").format(code=code))
        return dict(row._mapping)

    def organizations(self) -> list[dict[str, Any]]:
        parent = organizations.alias("parent")
        query = (select(organizations, parent.c.code.label("parent_code"))
                 .outerjoin(parent, organizations.c.parent_id == parent.c.id)
                 .order_by(organizations.c.code))
        with self.db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def subtree_ids(self, code: str) -> list[int]:
        """The organization and everything below it (recursive, portable SQL)."""
        tree = select(organizations.c.id).where(organizations.c.code == code).cte(recursive=True)
        tree = tree.union_all(select(organizations.c.id).where(organizations.c.parent_id == tree.c.id))
        with self.db.connect() as conn:
            ids = list(conn.execute(select(tree.c.id)).scalars())
        if not ids:
            raise NotFound(_("organization {code} not found").format(code=code))
        return ids

    def ancestor_ids(self, organization_id: int, conn: Connection | None = None) -> list[int]:
        """The organization and those above it; cached, since a process rarely sees it change."""
        found = self._ancestors.get(organization_id)
        if found is None:
            if conn is None:
                with self.db.connect() as own:
                    return self.ancestor_ids(organization_id, own)
            found = list(conn.execute(_ANCESTORS, {"org_id": organization_id}).scalars())
            self._ancestors[organization_id] = found
        return found

    @staticmethod
    def _org_id(conn: Any, code: str) -> int:
        found = conn.execute(select(organizations.c.id).where(organizations.c.code == code)).scalar()
        if found is None:
            raise NotFound(_("organization {code} not found").format(code=code))
        return found

    # -- users and grants ------------------------------------------------------------
    def add_user(self, username: str, full_name: str) -> int:
        with self.db.connect() as conn:
            try:
                return conn.execute(users.insert().values(
                    username=username, full_name=full_name, created_at=utc_now()
                )).inserted_primary_key[0]
            except IntegrityError:
                raise Duplicate(_("user {username} already exists").format(username=username)) from None

    def user(self, username: str) -> dict[str, Any]:
        with self.db.connect() as conn:
            row = conn.execute(select(users).where(users.c.username == username)).first()
        if row is None:
            raise NotFound(_("user {username} not found").format(username=username))
        return dict(row._mapping)

    def grant(self, username: str, role: str, org_code: str | None) -> None:
        """Grant a role at an organization and below, or installation-wide when org is None."""
        where = org_code or _("the whole installation")
        with self.db.connect() as conn:
            user_id = self.user(username)["id"]
            org_id = self._org_id(conn, org_code) if org_code else None
            held = select(role_grants.c.id).where(
                role_grants.c.user_id == user_id, role_grants.c.role == role,
                role_grants.c.organization_id.is_(None) if org_id is None
                else role_grants.c.organization_id == org_id)
            if conn.execute(held).first():
                raise Duplicate(_("{username} already holds {role} at {where}").format(
                                    username=username, role=role, where=where))
            conn.execute(role_grants.insert().values(
                user_id=user_id, role=role, organization_id=org_id, granted_at=utc_now()))

    def all_roles(self, username: str) -> frozenset[str]:
        """Every role the user holds anywhere."""
        query = (select(role_grants.c.role).join(users, users.c.id == role_grants.c.user_id)
                 .where(users.c.username == username))
        with self.db.connect() as conn:
            return frozenset(conn.execute(query).scalars())

    def installation_roles(self, username: str) -> frozenset[str]:
        """Roles the user holds for the whole installation (no organization)."""
        query = (select(role_grants.c.role).join(users, users.c.id == role_grants.c.user_id)
                 .where(users.c.username == username, role_grants.c.organization_id.is_(None)))
        with self.db.connect() as conn:
            return frozenset(conn.execute(query).scalars())

    def granted_roles(self) -> frozenset[str]:
        """Every role some user holds somewhere (lint warns of moves no one could make)."""
        with self.db.connect() as conn:
            return frozenset(conn.execute(select(role_grants.c.role).distinct()).scalars())

    def holders_of(self, role: str) -> int:
        query = select(func.count()).select_from(role_grants).where(role_grants.c.role == role)
        with self.db.connect() as conn:
            return conn.execute(query).scalar_one()

    def users_with_grants(self) -> list[dict[str, Any]]:
        query = (select(users.c.username, users.c.full_name, role_grants.c.role,
                        organizations.c.code.label("organization"), users.c.db_login)
                 .outerjoin(role_grants, role_grants.c.user_id == users.c.id)
                 .outerjoin(organizations, organizations.c.id == role_grants.c.organization_id)
                 .order_by(users.c.username, role_grants.c.role))
        with self.db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]

    def grants_of(self, username: str) -> list[tuple[str, int | None, str | None]]:
        """Every grant of a user: (role, organization id, organization code); the id and code
        are None for a grant covering the whole installation."""
        query = (select(role_grants.c.role, role_grants.c.organization_id, organizations.c.code)
                 .join(users, users.c.id == role_grants.c.user_id)
                 .outerjoin(organizations, organizations.c.id == role_grants.c.organization_id)
                 .where(users.c.username == username)
                 .order_by(role_grants.c.role, organizations.c.code))
        with self.db.connect() as conn:
            return [(r.role, r.organization_id, r.code) for r in conn.execute(query)]

    def session_login(self) -> str:
        """The database login this connection was opened as (PostgreSQL's ``session_user``,
        which ``SET ROLE`` does not change)."""
        with self.db.connect() as conn:
            return conn.execute(text("SELECT session_user")).scalar_one()

    def user_of_login(self, login: str) -> str | None:
        """The memberflow user a database login acts as, if it is linked to one."""
        with self.db.connect() as conn:
            return conn.execute(select(users.c.username).where(users.c.db_login == login)).scalar()

    def link_login(self, username: str, login: str | None) -> None:
        """Make ``login`` act as ``username`` (None: unlink); a login acts as one user only."""
        with self.db.connect() as conn:
            taken = conn.execute(select(users.c.username).where(
                users.c.db_login == login, users.c.username != username)).scalar() if login else None
            if taken:
                raise Duplicate(_("database login {login} already acts as {taken}").format(
                                    login=login, taken=taken))
            changed = conn.execute(update(users).where(users.c.username == username)
                                   .values(db_login=login)).rowcount
        if not changed:
            raise NotFound(_("user {username} not found").format(username=username))

    def subtree_ids_of(self, organization_ids: list[int]) -> list[int]:
        """The organizations given and everything below them."""
        if not organization_ids:
            return []
        tree = (select(organizations.c.id).where(organizations.c.id.in_(organization_ids))
                .cte(recursive=True))
        tree = tree.union_all(select(organizations.c.id).where(organizations.c.parent_id == tree.c.id))
        with self.db.connect() as conn:
            return sorted(set(conn.execute(select(tree.c.id)).scalars()))

    def roles_at(self, username: str, organization_id: int,
                 conn: Connection | None = None) -> frozenset[str]:
        """Roles the user holds at the organization or any organization above it."""
        if conn is None:
            with self.db.connect() as own:
                return self.roles_at(username, organization_id, own)
        above = self.ancestor_ids(organization_id, conn)
        return frozenset(conn.execute(_ROLES, {"username": username, "orgs": above}).scalars())

    # -- people ----------------------------------------------------------------------
    def add_person(self, **fields: Any) -> int:
        with self.db.connect() as conn:
            return conn.execute(people.insert().values(created_at=utc_now(), **fields)
                                ).inserted_primary_key[0]

    def add_people(self, rows: list[dict[str, Any]],
                   check: Callable[[dict[tuple[str, Any], int]], None] | None = None) -> list[int]:
        """Register many people in one transaction: all of them or none.

        ``check`` sees who of them is registered already (``registered``) inside the same
        write transaction, and may refuse: two imports of one file at once cannot both
        register it. On PostgreSQL the people table is locked against other writers for the
        transaction (reads go on); SQLite's write lock already serializes.
        """
        now = utc_now()
        with self.db.write() as conn:
            if check is not None:
                if not self.db.is_sqlite:
                    conn.execute(text("LOCK TABLE people IN SHARE ROW EXCLUSIVE MODE"))
                check(self.registered({row["full_name"] for row in rows}, conn))
            return [conn.execute(people.insert().values(created_at=now, **fields)
                                 ).inserted_primary_key[0] for fields in rows]

    def registered(self, names: set[str],
                   conn: Connection | None = None) -> dict[tuple[str, Any], int]:
        """(full name, birth date) → id of people already registered under those names."""
        if conn is None:
            with self.db.connect() as own:
                return self.registered(names, own)
        found: dict[tuple[str, Any], int] = {}
        ordered = sorted(names)
        for start in range(0, len(ordered), 500):
            query = select(people.c.id, people.c.full_name, people.c.birth_date).where(
                people.c.full_name.in_(ordered[start:start + 500]))
            found.update({(r.full_name, r.birth_date): r.id for r in conn.execute(query)})
        return found

    def person(self, person_id: int, conn: Connection | None = None) -> dict[str, Any]:
        if conn is None:
            with self.db.connect() as own:
                return self.person(person_id, own)
        row = conn.execute(_PERSON, {"person_id": person_id}).first()
        if row is None:
            raise NotFound(_("person {person_id} not found").format(person_id=person_id))
        return dict(row._mapping)

    def people_by_id(self, ids: list[int]) -> dict[int, dict[str, Any]]:
        with self.db.connect() as conn:
            rows = conn.execute(select(people).where(people.c.id.in_(ids)))
            return {r.id: dict(r._mapping) for r in rows}

    def people(self, limit: int = 1000, organization_ids: list[int] | None = None) -> list[dict[str, Any]]:
        """People by id; with ``organization_ids``, those registered at one of them or with a
        case at one of them."""
        query = select(people).order_by(people.c.id).limit(limit)
        if organization_ids is not None:
            query = query.where(or_(
                people.c.organization_id.in_(organization_ids),
                people.c.id.in_(select(cases.c.person_id)
                                .where(cases.c.organization_id.in_(organization_ids)))))
        with self.db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
