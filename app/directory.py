"""The directory as administrators keep it: organizations, users, their grants and logins."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memberflow.app.administration import Administration
from memberflow.i18n import _
from memberflow.workflow.inputs import clean_text

if TYPE_CHECKING:
    from memberflow.app.application import Application
    from memberflow.app.principal import Principal

DB_LOGIN_LENGTH = 63  # PostgreSQL's longest identifier


class DirectoryOperations:
    def __init__(self, app: Application) -> None:
        self.app = app
        self.access = app.access
        self.administration = Administration(app.store)

    def add_organization(self, principal: Principal, code: str, name: str, kind: str,
                         parent: str | None) -> int:
        return self.administration.add_organization(principal.username, code, name, kind, parent)

    def organizations(self, principal: Principal) -> list[dict[str, Any]]:
        """The tree, for everyone who works in the installation (codes name where to act)."""
        self.access.require_any_grant(principal)
        return self.app.store.directory.organizations()

    def add_user(self, principal: Principal, username: str, full_name: str) -> int:
        return self.administration.add_user(principal.username, username, full_name)

    def grant(self, principal: Principal, username: str, role: str, org_code: str | None) -> None:
        """A role at an organization and below, checked against the roles definitions name."""
        service = self.app.service
        known = {r for row in self.app.store.definitions.all()
                 for r in service.definition(row["id"]).roles}
        self.administration.grant(principal.username, username, role, org_code, known)

    def users(self, principal: Principal) -> list[dict[str, Any]]:
        self.access.require_directory_reader(principal)
        return self.app.store.directory.users_with_grants()

    def link_login(self, principal: Principal, username: str, login: str | None) -> None:
        """Make a PostgreSQL login act as ``username`` (None: unlink). Who a login acts as is
        who every command run through it is, so only a whole-installation administrator may."""
        self.access.require_admin(principal)
        checked = clean_text(login, _("database login"), DB_LOGIN_LENGTH) if login else None
        self.app.store.directory.link_login(username, checked)
