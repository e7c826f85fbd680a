"""Who may change the directory: organizations, users, role grants and people.

Administrators manage organizations, users and grants (installation-wide, or within the
subtree they were granted at); any officer may register a person; auditors change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING, Any

from memberflow.errors import BadInput, MoveRefused, NotPermitted
from memberflow.workflow.directory import (
    ADMINISTRATOR,
    AUDITOR,
    ORGANIZATION_KINDS,
    SYSTEM_ROLES,
    TICK_ACTOR,
    person_fields,
)
from memberflow.workflow.inputs import clean_text

if TYPE_CHECKING:
    from memberflow.storage.store import Store

class Administration:
    def __init__(self, store: Store) -> None:
        self.store = store

    def bootstrap(self, username: str, full_name: str) -> None:
        """The first administrator of a new installation; later ones are granted by an admin."""
        if self.store.directory.holders_of(ADMINISTRATOR):
            raise MoveRefused("an administrator already exists; ask one to run 'user grant'")
        if username.strip() == TICK_ACTOR:
            raise BadInput(f"username {TICK_ACTOR} is reserved for moves made by 'memberflow tick'")
        self.store.directory.add_user(clean_text(username, "username", 64),
                                      clean_text(full_name, "name", 300))
        self.store.directory.grant(username, ADMINISTRATOR, None)

    def add_organization(self, actor: str, code: str, name: str, kind: str,
                         parent: str | None) -> int:
        if kind not in ORGANIZATION_KINDS:
            raise BadInput(f"organization kind {kind!r} is not one of {', '.join(ORGANIZATION_KINDS)}")
        self.require_admin(actor, parent)
        return self.store.directory.add_organization(
            clean_text(code, "code", 32), clean_text(name, "name", 300), kind, parent)

    def add_user(self, actor: str, username: str, full_name: str) -> int:
        self.require_admin(actor, None, anywhere=True)
        if username.strip() == TICK_ACTOR:
            raise BadInput(f"username {TICK_ACTOR} is reserved for moves made by 'memberflow tick'")
        return self.store.directory.add_user(clean_text(username, "username", 64),
                                             clean_text(full_name, "name", 300))

    def grant(self, actor: str, username: str, role: str, org_code: str | None,
              known_roles: set[str]) -> None:
        if role not in known_roles | set(SYSTEM_ROLES):
            raise BadInput(f"unknown role {role!r}; roles: "
                           f"{', '.join(sorted(known_roles | set(SYSTEM_ROLES)))}")
        if org_code is None and role not in SYSTEM_ROLES:
            raise BadInput(f"role {role} is granted at an organization: give --org CODE")
        self.require_admin(actor, org_code)
        self.store.directory.grant(username, role, org_code)

    def add_person(self, actor: str, full_name: str, birth_date: date,
                   **fields: Any) -> int:
        """Any officer may register an applicant; an auditor may not."""
        self.require_officer(actor)
        return self.store.directory.add_person(**person_fields(full_name, birth_date, **fields))

    def import_people(self, actor: str, rows: list[dict[str, Any]],
                      check: Callable[[dict[tuple[str, Any], int]], None] | None = None) -> list[int]:
        """Register people already checked with ``person_fields``, in one transaction;
        ``check`` sees who of them is already registered, inside it (and may refuse)."""
        self.require_officer(actor)
        return self.store.directory.add_people(rows, check)

    def require_officer(self, actor: str) -> None:
        roles = self.store.directory.all_roles(actor)
        if not roles - {AUDITOR}:
            raise NotPermitted(f"{actor} holds no officer or administrator role")

    def require_admin(self, actor: str, org_code: str | None = None, anywhere: bool = False) -> None:
        """Administrator installation-wide, or at ``org_code`` or above it."""
        self.store.directory.user(actor)
        if anywhere and ADMINISTRATOR in self.store.directory.all_roles(actor):
            return
        if org_code is not None:
            org_id = self.store.directory.organization(org_code)["id"]
            if ADMINISTRATOR in self.store.directory.roles_at(actor, org_id):
                return
        elif self.store.directory.installation_roles(actor) & {ADMINISTRATOR}:
            return
        where = f"at {org_code} or above" if org_code else "for the whole installation"
        raise NotPermitted(f"{actor} is not an administrator {where}")
