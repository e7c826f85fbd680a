"""Setting up: ``init``, the schema (``db upgrade``, ``db current``, ``user link``'s logins
live with users) and the demo database."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from memberflow.commands.calendar import echo_moved, moved_text
from memberflow.commands.context import Invocation, pass_invocation
from memberflow.commands.output import render_table
from memberflow.errors import BadInput
from memberflow.i18n import _, pgettext

DEMO_DB = "memberflow-demo.db"


@click.command()
@click.option("--admin", metavar="USER", help="Create the first administrator (new installs).")
@click.option("--admin-name", metavar="NAME", help="Full name of that administrator.")
@pass_invocation
def init(invocation: Invocation, admin: str | None, admin_name: str | None) -> None:
    """Create or upgrade the database and install the bundled procedure definitions.

    A new installation needs --admin: its first administrator, who publishes them. Later, a
    bundled definition that differs from every stored version (a newer memberflow) is
    published by the administrator named with --actor, like 'definition publish' (pending
    while approval is required); with nothing new, init needs no one."""
    app = invocation.application(must_exist=False, schema_current=False)
    done = app.installation.initialize(admin, admin_name, invocation.actor)
    invocation.warn_if_exposed()
    if done.admin_created:
        click.echo(_("administrator {user} created for the whole installation")
                   .format(user=done.admin_created))
    if done.admin_login:
        click.echo(_("{user} acts through database login {login}; link other logins with "
                     "'memberflow user link USER --db-login NAME'")
                   .format(user=done.admin_created, login=done.admin_login))
    if done.admin_existing:
        click.echo(_("administrator {user} already administers the whole installation")
                   .format(user=done.admin_existing))
    for published in done.published:
        click.echo(installed_text(published))
    for loaded in done.calendars:
        echo_calendar_loaded(loaded)
    recounted_text(done.recounted)
    click.echo(_("database ready: {url}").format(url=done.url))


def installed_text(published: Any) -> str:
    row = published.version
    spec = f"{row['name']}@{row['version']}"
    if not published.is_new:
        return _("{name}: already installed as {spec} ({status}, sha256 {sha})").format(
            name=row["name"], spec=spec, status=row["status"], sha=row["sha256"][:12])
    if row["status"] == "pending":
        return _("{name}: stored as {spec}, pending: another administrator must run "
                 "'memberflow definition approve {spec}'").format(name=row["name"], spec=spec)
    return _("{name}: published as {spec} (sha256 {sha})").format(
        name=row["name"], spec=spec, sha=row["sha256"][:12])


def echo_calendar_loaded(loaded: Any) -> None:
    click.echo(_("{file}: {added} of {days} day(s) added to {year} (the rest already so); "
                 "calendar {version}").format(file=loaded.path.name, added=len(loaded.added),
                                              days=len(loaded.file.days), year=loaded.file.year,
                                              version=loaded.version))
    echo_moved(loaded.recounted.moved, pgettext("deadline", "moved"))


def recounted_text(recounted: Any) -> None:
    """Deadlines stored before the calendar version was recorded with them, counted again."""
    if recounted is not None and recounted.counted:
        click.echo(_("stored deadlines counted again on the calendar in force: {counted}, of which "
                     "moved: {moved}").format(counted=recounted.counted, moved=len(recounted.moved)))
        for moved in recounted.moved:
            click.echo(f"  {moved_text(moved)}")


@click.group()
def db() -> None:
    """The database schema: upgrade an older database, show where it stands."""


@db.command("upgrade")
@pass_invocation
def db_upgrade(invocation: Invocation) -> None:
    """Bring the database to this program's schema (back it up first)."""
    app = invocation.application(schema_current=False)
    before, after, recounted = app.installation.upgrade()
    invocation.warn_if_exposed()
    if before == after:
        click.echo(_("schema already at revision {revision}; nothing to do").format(revision=after))
    else:
        click.echo(_("schema upgraded from revision {before} to {after}").format(
            before=before or _("none (empty database)"), after=after))
        recounted_text(recounted)


@db.command("current")
@pass_invocation
def db_current(invocation: Invocation) -> None:
    """Show the database's schema revision and whether it needs an upgrade."""
    found = invocation.application(schema_current=False).installation.schema()
    if found.current:
        click.echo(_("revision {revision} (head): current").format(revision=found.revision))
    else:
        click.echo(_("revision {revision}, head {head}: run 'memberflow db upgrade'").format(
            revision=found.revision or _("none"), head=found.head))


@click.command()
@click.option("--db", "demo_db", metavar="PATH",
              help=f"SQLite file to build (default: the global --db path, else {DEMO_DB}). "
                   "An existing file is replaced only if it is an earlier demo database.")
@click.pass_context
def demo(ctx: click.Context, demo_db: str | None) -> None:
    """Build a provincial bloc and walk ~20 applicants through every stage."""
    from click.core import ParameterSource
    from memberflow.app.installation import build_demo

    root = ctx.find_root()
    given = root.params.get("db") if root.get_parameter_source("db") == \
        ParameterSource.COMMANDLINE else None
    target = demo_db or given or DEMO_DB
    if "://" in target:
        raise BadInput(_("the demo builds an SQLite file: give a path, not a URL"))
    path = Path(target)
    report = build_demo(path, click.echo)
    click.echo()
    click.echo(_("Cases by stage and state (database: {path}):").format(path=path.resolve()))
    click.echo(render_table(report.summary))
    click.echo()
    click.echo(_("Full history of case {case} ({name}):").format(case=report.featured_case,
                                                                 name=report.featured_name))
    click.echo(render_table(report.featured_history,
                            ["seq", "business_date", "trigger", "to_label", "actor", "role"]))
    click.echo()
    click.echo(_("Try: memberflow --db {path} --actor {actor} case available {case}").format(
        path=path, actor=report.sample_actor, case=report.sample_case))
    click.echo(_("     memberflow --db {path} --actor kiemtoan screen   # the members this year's "
                 "screening lists").format(path=path))
