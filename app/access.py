"""The one place that decides what a principal may see and change.

Grants are roles held at an organization (covering its subtree) or, for administrators and
auditors, at the whole installation. From them:

* an officer (any role of a definition) sees and acts on people and cases in the subtrees
  of their grants;
* an auditor sees everything and changes nothing;
* an administrator manages the directory and the definitions (their subtree, or all);
* a person's sensitive fields are shown only to the roles the definition names.

Which role may make which move is the definition's rule, applied by the engine inside the
move's transaction on the roles read there (``roles_at``); whether the principal may see the
case at all is decided here. Every refusal is ``NotPermitted`` naming the grant missing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from memberflow.app.principal import Principal
from memberflow.errors import NotPermitted
from memberflow.i18n import _
from memberflow.workflow.directory import ADMINISTRATOR, AUDITOR, SYSTEM_ROLES

if TYPE_CHECKING:
    from memberflow.storage.store import Store


@dataclass(frozen=True)
class Grant:
    role: str
    organization_id: int | None  # None: the whole installation
    organization_code: str | None

    @property
    def officer(self) -> bool:
        return self.role not in SYSTEM_ROLES


class Access:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._grants: dict[str, tuple[Grant, ...]] = {}

    # -- what a principal holds ---------------------------------------------------------
    def grants(self, principal: Principal) -> tuple[Grant, ...]:
        found = self._grants.get(principal.username)
        if found is None:
            found = tuple(Grant(*row) for row in self.store.directory.grants_of(principal.username))
            self._grants[principal.username] = found
        return found

    def is_auditor(self, principal: Principal) -> bool:
        return any(g.role == AUDITOR for g in self.grants(principal))

    def roles_at(self, principal: Principal, organization_id: int) -> frozenset[str]:
        """Roles held at the organization or above it (installation-wide grants included)."""
        above = set(self.store.directory.ancestor_ids(organization_id))
        return frozenset(g.role for g in self.grants(principal)
                         if g.organization_id is None or g.organization_id in above)

    def officer_roles_at(self, principal: Principal, organization_id: int) -> frozenset[str]:
        return self.roles_at(principal, organization_id) - set(SYSTEM_ROLES)

    # -- reads ----------------------------------------------------------------------------
    def visible_organizations(self, principal: Principal) -> list[int] | None:
        """The organizations whose people and cases the principal sees: None for all (an
        auditor), else the subtrees of their officer grants; refused to anyone holding neither."""
        if self.is_auditor(principal):
            return None
        officer = [g for g in self.grants(principal) if g.officer]
        if not officer:
            raise NotPermitted(_("{user} holds no officer or auditor grant; reading cases and "
                                 "people takes one").format(user=principal.username))
        return self.store.directory.subtree_ids_of(
            [g.organization_id for g in officer if g.organization_id is not None])

    def require_reader_at(self, principal: Principal, organization_id: int, organization_code: str,
                          what: str) -> None:
        """``what`` (a case, a person) at the organization may be read by the principal."""
        if self.is_auditor(principal) or self.officer_roles_at(principal, organization_id):
            return
        raise NotPermitted(_("{user} holds no grant covering {what} at {org}: it takes an "
                             "officer role at {org} or above, or auditor")
                           .format(user=principal.username, what=what, org=organization_code))

    def require_scope(self, principal: Principal, organization_code: str | None) -> list[int] | None:
        """The organization ids a listing may show: the subtree of ``organization_code`` (which
        the principal must be able to read), or everything they see when it is None."""
        if organization_code is None:
            return self.visible_organizations(principal)
        organization = self.store.directory.organization(organization_code)
        self.require_reader_at(principal, organization["id"], organization_code,
                               _("organization {org}").format(org=organization_code))
        return self.store.directory.subtree_ids(organization_code)

    def require_auditor(self, principal: Principal, what: str) -> None:
        if not self.is_auditor(principal):
            raise NotPermitted(_("{user} is not an auditor; {what} takes an auditor grant")
                               .format(user=principal.username, what=what))

    def require_directory_reader(self, principal: Principal) -> None:
        """The directory's users and grants: administrators and auditors."""
        if not any(g.role in SYSTEM_ROLES for g in self.grants(principal)):
            raise NotPermitted(_("{user} holds no administrator or auditor grant; the directory "
                                 "of users and grants takes one").format(user=principal.username))

    def require_any_grant(self, principal: Principal) -> None:
        """Reads open to everyone who works in the installation (procedures, the calendar)."""
        self.store.directory.user(principal.username)
        if not self.grants(principal):
            raise NotPermitted(_("{user} holds no grant at all").format(user=principal.username))

    def may_see(self, principal: Principal, organization_id: int | None,
                shown_to: Iterable[str]) -> bool:
        """Whether sensitive fields of a person at the organization are shown: the principal
        holds one of the roles the definition names there (``auditor`` counts everywhere)."""
        allowed = set(shown_to)
        if AUDITOR in allowed and self.is_auditor(principal):
            return True
        if organization_id is None:
            return False
        return bool(self.roles_at(principal, organization_id) & allowed)

    def may_see_anywhere(self, principal: Principal, shown_to: Iterable[str]) -> bool:
        """Whether the principal holds one of the roles ``shown_to`` names anywhere."""
        allowed = set(shown_to)
        return any(g.role in allowed for g in self.grants(principal))

    # -- changes --------------------------------------------------------------------------
    def require_officer(self, principal: Principal) -> None:
        """Registering people: any officer or administrator (an auditor changes nothing)."""
        if not any(g.role != AUDITOR for g in self.grants(principal)):
            raise NotPermitted(_("{user} holds no officer or administrator role")
                               .format(user=principal.username))

    def require_admin(self, principal: Principal, organization_code: str | None = None,
                      anywhere: bool = False) -> None:
        """Administrator for the whole installation, or at ``organization_code`` or above
        (``anywhere``: at any organization)."""
        self.store.directory.user(principal.username)
        admin = [g for g in self.grants(principal) if g.role == ADMINISTRATOR]
        if anywhere and admin:
            return
        if organization_code is not None:
            organization = self.store.directory.organization(organization_code)
            if ADMINISTRATOR in self.roles_at(principal, organization["id"]):
                return
            raise NotPermitted(_("{user} is not an administrator at {org} or above")
                               .format(user=principal.username, org=organization_code))
        if any(g.organization_id is None for g in admin):
            return
        raise NotPermitted(_("{user} is not an administrator for the whole installation")
                           .format(user=principal.username))
