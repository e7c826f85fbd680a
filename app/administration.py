"""Who may change the directory: organizations, users, role grants and people.

Administrators manage organizations, users and grants (installation-wide, or within the
subtree they were granted at); any officer may register a person; auditors change nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memberflow.app.access import Access
from memberflow.app.principal import Principal
from memberflow.errors import BadInput, MoveRefused
from memberflow.i18n import _
from memberflow.workflow.directory import ADMINISTRATOR, ORGANIZATION_KINDS, SYSTEM_ROLES, TICK_ACTOR
from memberflow.workflow.inputs import clean_text

if TYPE_CHECKING:
    from memberflow.storage.store import Store

class Administration:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.access = Access(store)

    def bootstrap(self, username: str, full_name: str) -> None:
        """The first administrator of a new installation; later ones are granted by an admin."""
        if self.store.directory.holders_of(ADMINISTRATOR):
            raise MoveRefused(_("an administrator already exists; ask one to run 'user grant'"))
        if username.strip() == TICK_ACTOR:
            raise BadInput(_("username {tick_actor} is reserved for moves made by 'memberflow tick'").format(
                               tick_actor=TICK_ACTOR))
        self.store.directory.add_user(clean_text(username, "username", 64),
                                      clean_text(full_name, "name", 300))
        self.store.directory.grant(username, ADMINISTRATOR, None)

    def is_first_administrator(self, username: str) -> bool:
        """Whether ``username`` already administers the whole installation (``init --admin``
        run again names them: nothing to do)."""
        held = self.store.directory.grants_of(username) if self.store.directory.holders_of(
            ADMINISTRATOR) else []
        return any(role == ADMINISTRATOR and org is None for role, org, _code in held)

    def add_organization(self, actor: str, code: str, name: str, kind: str,
                         parent: str | None) -> int:
        if kind not in ORGANIZATION_KINDS:
            raise BadInput(_("organization kind {kind!r} is not one of {organization_kinds}").format(
                               kind=kind, organization_kinds=', '.join(ORGANIZATION_KINDS)))
        self.require_admin(actor, parent)
        return self.store.directory.add_organization(
            clean_text(code, "code", 32), clean_text(name, "name", 300), kind, parent)

    def add_user(self, actor: str, username: str, full_name: str) -> int:
        self.require_admin(actor, None, anywhere=True)
        if username.strip() == TICK_ACTOR:
            raise BadInput(_("username {tick_actor} is reserved for moves made by 'memberflow tick'").format(
                               tick_actor=TICK_ACTOR))
        return self.store.directory.add_user(clean_text(username, "username", 64),
                                             clean_text(full_name, "name", 300))

    def grant(self, actor: str, username: str, role: str, org_code: str | None,
              known_roles: set[str]) -> None:
        if role not in known_roles | set(SYSTEM_ROLES):
            raise BadInput(_("unknown role {role!r}; roles: {names}").format(
                               role=role, names=', '.join(sorted(known_roles | set(SYSTEM_ROLES)))))
        if org_code is None and role not in SYSTEM_ROLES:
            raise BadInput(_("role {role} is granted at an organization: give --org CODE").format(role=role))
        self.require_admin(actor, org_code)
        self.store.directory.grant(username, role, org_code)

    def require_officer(self, actor: str) -> None:
        self.access.require_officer(Principal(actor, "established by the front end"))

    def require_admin(self, actor: str, org_code: str | None = None, anywhere: bool = False) -> None:
        """Administrator installation-wide, or at ``org_code`` or above it."""
        self.access.require_admin(Principal(actor, "established by the front end"), org_code, anywhere)
