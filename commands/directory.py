"""``memberflow org`` and ``memberflow user``: the directory administrators keep."""

from __future__ import annotations

import click
from memberflow.commands.context import Invocation, pass_invocation
from memberflow.commands.options import format_option
from memberflow.commands.output import emit
from memberflow.i18n import _
from memberflow.workflow.directory import ORGANIZATION_KINDS


@click.group()
def org() -> None:
    """Organizations: province committee → committee above → grassroots → branch."""


@org.command("add")
@click.argument("code")
@click.option("--name", required=True, help="Name, in Vietnamese.")
@click.option("--kind", type=click.Choice(ORGANIZATION_KINDS), required=True)
@click.option("--parent", metavar="CODE", help="Code of the organization directly above.")
@pass_invocation
def org_add(invocation: Invocation, code: str, name: str, kind: str, parent: str | None) -> None:
    """Add an organization (administrators)."""
    directory = invocation.application().directory
    org_id = directory.add_organization(invocation.principal(), code, name, kind, parent)
    click.echo(_("organization {code} added (#{id})").format(code=code, id=org_id))


@org.command("list")
@format_option
@pass_invocation
def org_list(invocation: Invocation, fmt: str) -> None:
    rows = invocation.application().directory.organizations(invocation.principal())
    emit(rows, fmt, ["code", "name", "kind", "parent_code"])


@click.group()
def user() -> None:
    """Users and their role grants per organization (a grant covers the subtree)."""


@user.command("add")
@click.argument("username")
@click.option("--name", required=True, help="Full name.")
@pass_invocation
def user_add(invocation: Invocation, username: str, name: str) -> None:
    """Add a user (administrators)."""
    invocation.application().directory.add_user(invocation.principal(), username, name)
    click.echo(_("user {user} added").format(user=username))


@user.command("grant")
@click.argument("username")
@click.argument("role")
@click.option("--org", "org_code", metavar="CODE",
              help="Organization (its subtree); omit only for administrator/auditor grants "
                   "covering the whole installation.")
@pass_invocation
def user_grant(invocation: Invocation, username: str, role: str, org_code: str | None) -> None:
    """Grant ROLE to USERNAME at an organization and everything below it (administrators)."""
    invocation.application().directory.grant(invocation.principal(), username, role, org_code)
    if org_code:
        click.echo(_("{user} is {role} at {org} and below").format(user=username, role=role,
                                                                  org=org_code))
    else:
        click.echo(_("{user} is {role} at the whole installation").format(user=username, role=role))


@user.command("list")
@format_option
@pass_invocation
def user_list(invocation: Invocation, fmt: str) -> None:
    emit(invocation.application().directory.users(invocation.principal()), fmt,
         ["username", "full_name", "role", "organization", "db_login"])


@user.command("link")
@click.argument("username")
@click.option("--db-login", "login", metavar="NAME",
              help="The PostgreSQL login that acts as USERNAME.")
@click.option("--unlink", is_flag=True, help="The login USERNAME has acts as no one any more.")
@pass_invocation
def user_link(invocation: Invocation, username: str, login: str | None, unlink: bool) -> None:
    """Make a PostgreSQL login act as USERNAME (administrators for the whole installation):
    every command run through that login acts as this user, and only as this user."""
    from memberflow.errors import BadInput

    if bool(login) == unlink:
        raise BadInput(_("give --db-login NAME or --unlink (one of them)"))
    invocation.application().directory.link_login(invocation.principal(), username, login)
    if login:
        click.echo(_("database login {login} now acts as {user}").format(login=login, user=username))
    else:
        click.echo(_("{user} has no database login now").format(user=username))
