"""memberflow command line: a thin shell over ``workflow`` (rules) and ``storage`` (records).

Heavy modules (SQLAlchemy, transitions, holidays) are imported inside commands so that
``memberflow --help`` starts fast. Every domain error is mapped to an exit code in
``EXIT_CODES`` below and printed as one line (plus one line per failed rule).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from memberflow.commands.context import Invocation
from memberflow.commands.options import (
    RECORD_ID,
    business_date,
    format_option,
    key_values,
    lang_option,
    output_file,
)
from memberflow.commands.output import RowStream, emit, render_table
from memberflow.commands.output import progress_bar as _bar
from memberflow.commands.output import spreadsheet_safe as _spreadsheet_safe
from memberflow.commands.output import write_csv as _write_csv
from memberflow.errors import (
    AuditFailed,
    BadInput,
    Conflict,
    DefinitionInvalid,
    MemberflowError,
    MoveRefused,
    NotFound,
    NotPermitted,
    StoppedPartWay,
    Unavailable,
)
from memberflow.i18n import LANGUAGES
from memberflow.i18n import use as use_language

if TYPE_CHECKING:
    from datetime import date

    from memberflow.app.service import Service
    from memberflow.storage.store import Store

BUNDLED_DEFINITIONS = Path(__file__).resolve().parent / "definitions"
DEMO_DB = "memberflow-demo.db"

# The one place errors become exit codes (documented in the README).
EXIT_OK, EXIT_REFUSED, EXIT_BAD_INPUT, EXIT_CONFLICT, EXIT_NOT_FOUND = 0, 1, 2, 3, 4
EXIT_NOT_PERMITTED, EXIT_UNAVAILABLE, EXIT_AUDIT_FAILED, EXIT_INTERNAL = 5, 6, 8, 70
# Output into a pipe whose reader has gone (``memberflow … | head``): the status a shell
# reports for a Unix tool stopped by SIGPIPE there.
EXIT_PIPE_CLOSED = 128 + 13
# Each branch of the error tree (memberflow.errors) and its exit code.
EXIT_CODES: list[tuple[type[Exception], int]] = [
    (MoveRefused, EXIT_REFUSED),
    (BadInput, EXIT_BAD_INPUT),
    (Conflict, EXIT_CONFLICT),
    (NotFound, EXIT_NOT_FOUND),
    (NotPermitted, EXIT_NOT_PERMITTED),
    (Unavailable, EXIT_UNAVAILABLE),
    (AuditFailed, EXIT_AUDIT_FAILED),
]
HANDLED = MemberflowError


def exit_code(error: Exception) -> int:
    """The exit code of an error; bulk work stopped part-way exits as what stopped it."""
    if isinstance(error, StoppedPartWay):
        return exit_code(error.cause)
    return next((code for kind, code in EXIT_CODES if isinstance(error, kind)), EXIT_INTERNAL)


def _report(error: Exception) -> None:
    if isinstance(error, MoveRefused):
        click.echo(f"refused: {error.summary}", err=True)
        for reason in error.reasons:
            click.echo(f"  - {reason}", err=True)
    elif isinstance(error, DefinitionInvalid):
        click.echo(f"error: definition has {len(error.problems)} problem(s)", err=True)
        for problem in error.problems:
            click.echo(f"  {problem}", err=True)
    else:
        click.echo(f"error: {error}", err=True)


def _discard_output() -> None:
    """The reader of our output has gone: send what is still buffered nowhere, so that exiting
    does not fail on it again."""
    with suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


class MemberflowGroup(click.Group):
    """Maps domain errors to exit codes for every subcommand; never shows a traceback
    unless MEMBERFLOW_DEBUG is set."""

    def make_context(self, info_name: str | None, args: list[str],
                     parent: click.Context | None = None, **extra: Any) -> click.Context:
        """A bad option of ``memberflow`` itself (``--lang fr``) is one line too."""
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as error:
            if parent is not None:
                raise
            click.echo(f"error: {error.format_message()} (see --help)", err=True)
            sys.exit(EXIT_BAD_INPUT)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            result = super().invoke(ctx)
            sys.stdout.flush()  # a closed pipe shows here, not as Python exits
            return result
        except BrokenPipeError:
            _discard_output()
            ctx.exit(EXIT_PIPE_CLOSED)
        except HANDLED as error:
            _report(error)
            ctx.exit(exit_code(error))
        except click.UsageError as error:  # one line, like every other error
            click.echo(f"error: {error.format_message()} (see --help)", err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            if os.environ.get("MEMBERFLOW_DEBUG"):
                raise
            click.echo(f"internal error: {type(error).__name__}: {error} (set MEMBERFLOW_DEBUG=1 "
                       "for details)", err=True)
            ctx.exit(EXIT_INTERNAL)


class Settings(Invocation):
    """Transitional: what the commands not yet moved onto the application layer still use
    (a store, a service and a declared actor); each moves to ``Invocation`` and is gone."""

    def store(self, must_exist: bool = True, schema_current: bool = True) -> Store:
        return self.application(must_exist, schema_current).store

    def service(self) -> Service:
        from memberflow.app.service import Service

        return Service(self.store())

    def require_actor(self) -> str:
        return self.principal().username


pass_settings = click.make_pass_decorator(Settings)



# -- root -----------------------------------------------------------------------------------
@click.group(cls=MemberflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="MEMBERFLOW_DB", metavar="URL|PATH",
              help="SQLAlchemy URL or SQLite file path [env MEMBERFLOW_DB; default ./memberflow.db]")
@click.option("--actor", envvar="MEMBERFLOW_ACTOR", metavar="USER",
              help="The user making changes [env MEMBERFLOW_ACTOR].")
@click.option("--lang", envvar="MEMBERFLOW_LANG", type=click.Choice(LANGUAGES), default="vi",
              show_default=True, help="Language of labels for every command [env MEMBERFLOW_LANG].")
@click.version_option(package_name="memberflow")
@click.pass_context
def main(ctx: click.Context, db: str | None, actor: str | None, lang: str) -> None:
    """Audited workflow for party membership: admission, probation, recognition, removal."""
    use_language(lang)
    ctx.obj = Settings(db, actor, lang)


@main.command()
@click.option("--admin", metavar="USER", help="Create the first administrator (new installs).")
@click.option("--admin-name", metavar="NAME", help="Full name of that administrator.")
@pass_settings
def init(settings: Settings, admin: str | None, admin_name: str | None) -> None:
    """Create or upgrade the database and install the bundled procedure definitions.

    A new installation needs --admin: its first administrator, who publishes them. Later, a
    bundled definition that differs from every stored version (a newer memberflow) is
    published by the administrator named with --actor, like 'definition publish' (pending
    while approval is required); with nothing new, init needs no one."""
    from memberflow.app.administration import Administration
    from memberflow.app.publishing import Publishing
    from memberflow.storage.schema_upgrade import is_new

    store = settings.store(must_exist=False)
    if not admin and is_new(store.db):
        raise BadInput("a new installation needs its first administrator: memberflow init "
                       "--admin USER --admin-name NAME")
    store.create_schema()
    settings.warn_if_exposed()
    if admin:
        Administration(store).bootstrap(admin, admin_name or admin)
        click.echo(f"administrator {admin} created for the whole installation")
    for published in Publishing(store).install(admin or settings.actor, BUNDLED_DEFINITIONS):
        click.echo(_installed_text(published))
    for path in sorted((BUNDLED_DEFINITIONS / "calendars").glob("*.yaml")):
        _load_calendar(settings, None, path)
    _recount_stored_deadlines(settings)
    click.echo(f"database ready: {store.url}")


def _installed_text(published: Any) -> str:
    row = published.version
    spec = f"{row['name']}@{row['version']}"
    if not published.is_new:
        return f"{row['name']}: already installed as {spec} ({row['status']}, sha256 {row['sha256'][:12]})"
    if row["status"] == "pending":
        return (f"{row['name']}: stored as {spec}, pending: another administrator must run "
                f"'memberflow definition approve {spec}'")
    return f"{row['name']}: published as {spec} (sha256 {row['sha256'][:12]})"


# -- schema ---------------------------------------------------------------------------------
@main.group()
def db() -> None:
    """The database schema: upgrade an older database, show where it stands."""


@db.command("upgrade")
@pass_settings
def db_upgrade(settings: Settings) -> None:
    """Bring the database to this program's schema (back it up first)."""
    from memberflow.storage.schema_upgrade import upgrade

    before, after = upgrade(settings.store(schema_current=False).db)
    settings.warn_if_exposed()
    if before == after:
        click.echo(f"schema already at revision {after}; nothing to do")
    else:
        click.echo(f"schema upgraded from revision {before or 'none (empty database)'} to {after}")
        _recount_stored_deadlines(settings)


def _recount_stored_deadlines(settings: Settings) -> None:
    """Deadlines stored before the calendar version was recorded with them are counted again
    on the holiday data now stored in the database."""
    recounted = calendar_administration(settings).recount_stale()
    if recounted.counted:
        click.echo(f"stored deadlines counted again on the calendar in force: {recounted.counted}, "
                   f"of which moved: {len(recounted.moved)}")
        for moved in recounted.moved:
            click.echo(f"  {_moved_text(moved)}")


@db.command("current")
@pass_settings
def db_current(settings: Settings) -> None:
    """Show the database's schema revision and whether it needs an upgrade."""
    from memberflow.storage.schema_upgrade import state

    found = state(settings.store(schema_current=False).db)
    if found.current:
        click.echo(f"revision {found.revision} (head): current")
    else:
        click.echo(f"revision {found.revision or 'none'}, head {found.head}: run 'memberflow db upgrade'")


# -- working-day calendar ---------------------------------------------------------------------
@main.group()
def calendar() -> None:
    """The working-day calendar deadlines are counted on: the holiday data stored in the
    database (a snapshot of the holidays package's VN days) plus administrators' overrides."""


def calendar_administration(settings: Settings) -> Any:
    from memberflow.app.calendar import CalendarAdministration

    return CalendarAdministration(settings.service())


def warn_about_calendar(service: Service) -> None:
    """One line on stderr when the holiday data should be refreshed (deadlines keep being
    counted on the snapshot in force)."""
    from memberflow.app.calendar import calendar_warnings
    from memberflow.workflow.dates import today

    for warning in calendar_warnings(service.engine.calendar, today().year):
        click.echo(f"warning: {warning}", err=True)


@calendar.command("show")
@click.argument("year", type=click.IntRange(1990, 2100))
@lang_option
@format_option
@pass_settings
def calendar_show(settings: Settings, year: int, lang: str, fmt: str) -> None:
    """Public holidays (named in --lang), swapped days and overrides of YEAR, and the
    calendar's version."""
    service = settings.service()
    warn_about_calendar(service)
    calendar = service.engine.calendar
    data = calendar.holidays
    if fmt == "json":
        emit({"calendar": calendar.version(year),
              "holiday_data": {"snapshot": data.snapshot, "package": "holidays",
                               "package_version": data.package_version, "sha256": data.digest,
                               "years": [data.first_year, data.last_year]},
              "days": calendar.year(year, lang)}, fmt)
        return
    emit(calendar.year(year, lang), fmt)
    click.echo(f"calendar {calendar.version(year)}; holiday data {data.describe()}")
    if not data.first_year <= year <= data.last_year:
        click.echo(f"the holiday data does not cover {year}: only weekends and overrides count")


@calendar.command("load")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_settings
def calendar_load(settings: Settings, file: Path) -> None:
    """Apply a yearly calendar file (administrators): every problem is reported with its line
    and nothing is applied; days the calendar already counts that way are skipped. Stored
    deadlines the added days move are counted again in the same transaction."""
    _load_calendar(settings, settings.require_actor(), file)


def _load_calendar(settings: Settings, actor: str | None, path: Path) -> None:
    admin = calendar_administration(settings)
    loaded, added, recounted = admin.load_file(actor, path)
    version = admin.service.engine.calendar.version(loaded.year)
    click.echo(f"{path.name}: {len(added)} of {len(loaded.days)} day(s) added to {loaded.year} "
               f"(the rest already so); calendar {version}")
    _echo_moved(recounted.moved, "moved")


@calendar.command("set-day")
@click.argument("day", metavar="DATE")
@click.option("--off", is_flag=True, help="An extra day off.")
@click.option("--working", is_flag=True, help="A working day (e.g. a swapped Saturday).")
@click.option("--reason", required=True, help="The decision that sets it (e.g. the Prime Minister's notice).")
@pass_settings
def calendar_set_day(settings: Settings, day: str, off: bool, working: bool, reason: str) -> None:
    """Override one day (administrators); the open deadlines it moves are counted again in
    the same transaction."""
    from memberflow.workflow.dates import format_date, parse_date

    if off == working:
        raise BadInput("say whether the day is --off or --working (one of them)")
    when = parse_date(day, "DATE")
    admin = calendar_administration(settings)
    recounted = admin.set_day(settings.require_actor(), when, working, reason)
    version = admin.service.engine.calendar.version(when.year)
    click.echo(f"{format_date(when)} is now a {'working day' if working else 'day off'}; calendar {version}")
    _echo_moved(recounted.moved, "moved")


@calendar.command("refresh")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@lang_option
@format_option
@pass_settings
def calendar_refresh(settings: Settings, dry_run: bool, lang: str, fmt: str) -> None:
    """Take the installed holidays package's day list as the holiday data (administrators):
    lists the days added, removed, changed and renamed against the snapshot in force and every
    open deadline that moves; without --dry-run stores it as a new snapshot, recorded with
    who and when, and counts those deadlines again, in one transaction."""
    refresh = calendar_administration(settings).refresh(settings.require_actor(), dry_run)
    if fmt == "json":
        emit(_refresh_json(refresh, lang), fmt)
        return
    click.echo(f"holiday data in force: {refresh.before.describe()}")
    click.echo(f"installed package:     holidays {refresh.after.package_version}, "
               f"{refresh.after.first_year}–{refresh.after.last_year}, "
               f"sha256 {refresh.after.digest[:12]}")
    if refresh.nothing_to_do:
        click.echo("the holiday data is current; nothing to do")
        return
    for change in refresh.days:
        click.echo(_day_change_text(change, lang))
    _echo_moved(refresh.recounted.moved, "moved" if refresh.applied else "would move")
    if refresh.applied:
        click.echo(f"applied: holiday data {refresh.after.describe()}, recorded by {settings.actor}")
    else:
        click.echo("dry run: nothing written; run without --dry-run to apply")


def _day_change_text(change: Any, lang: str) -> str:
    from memberflow.workflow.dates import format_date

    def state(day: Any) -> str:
        return f"{'working' if day.working else 'day off'}, {day.name(lang)}"

    when = f"{format_date(change.day)} {change.day.strftime('%a')}"
    if change.kind == "added":
        return f"added    {when}  {state(change.after)}"
    if change.kind == "removed":
        return f"removed  {when}  {state(change.before)}"
    return f"{change.kind:<8} {when}  {state(change.before)} → {state(change.after)}"


def _moved_text(moved: Any) -> str:
    from memberflow.workflow.dates import format_date

    after = moved.after
    new = "no deadline" if after is None else (
        format_date(after.on) if after.move == moved.before.move else f"{after.move} {format_date(after.on)}")
    return f"case {moved.case_id}: {moved.before.move} {format_date(moved.before.on)} → {new}"


def _echo_moved(moved: Sequence[Any], verb: str) -> None:
    click.echo(f"open deadlines that {verb}: {len(moved)}")
    for item in moved:
        click.echo(f"  {_moved_text(item)}")


def _refresh_json(refresh: Any, lang: str) -> dict[str, Any]:
    def data(found: Any) -> dict[str, Any]:
        return {"snapshot": found.snapshot, "package_version": found.package_version,
                "sha256": found.digest, "years": [found.first_year, found.last_year]}

    def day(found: Any) -> dict[str, Any] | None:
        return None if found is None else {"working": found.working, "name": found.name(lang)}

    return {"in_force": data(refresh.before), "installed": data(refresh.after),
            "applied": refresh.applied,
            "days": [{"change": c.kind, "date": c.day, "before": day(c.before), "after": day(c.after)}
                     for c in refresh.days],
            "moved": [{"case": m.case_id, "move": m.before.move, "from": m.before.on,
                       "to": m.after.on if m.after else None,
                       "move_after": m.after.move if m.after else None,
                       "calendar_version": m.after.calendar if m.after else None}
                      for m in refresh.recounted.moved]}


# -- organizations --------------------------------------------------------------------------
@main.group()
def org() -> None:
    """Organizations: province committee → committee above → grassroots → branch."""


ORG_KINDS = ["province_committee", "committee_above", "grassroots", "branch"]


def administration(settings: Settings) -> Any:
    from memberflow.app.administration import Administration

    return Administration(settings.store())


@org.command("add")
@click.argument("code")
@click.option("--name", required=True, help="Name, in Vietnamese.")
@click.option("--kind", type=click.Choice(ORG_KINDS), required=True)
@click.option("--parent", metavar="CODE", help="Code of the organization directly above.")
@pass_settings
def org_add(settings: Settings, code: str, name: str, kind: str, parent: str | None) -> None:
    """Add an organization (administrators)."""
    org_id = administration(settings).add_organization(settings.require_actor(), code, name,
                                                        kind, parent)
    click.echo(f"organization {code} added (#{org_id})")


@org.command("list")
@format_option
@pass_settings
def org_list(settings: Settings, fmt: str) -> None:
    rows = settings.store().directory.organizations()
    emit(rows, fmt, ["code", "name", "kind", "parent_code"])


# -- users ------------------------------------------------------------------------------------
@main.group()
def user() -> None:
    """Users and their role grants per organization (a grant covers the subtree)."""


@user.command("add")
@click.argument("username")
@click.option("--name", required=True, help="Full name.")
@pass_settings
def user_add(settings: Settings, username: str, name: str) -> None:
    """Add a user (administrators)."""
    administration(settings).add_user(settings.require_actor(), username, name)
    click.echo(f"user {username} added")


@user.command("grant")
@click.argument("username")
@click.argument("role")
@click.option("--org", "org_code", metavar="CODE",
              help="Organization (its subtree); omit only for administrator/auditor grants "
                   "covering the whole installation.")
@pass_settings
def user_grant(settings: Settings, username: str, role: str, org_code: str | None) -> None:
    """Grant ROLE to USERNAME at an organization and everything below it (administrators)."""
    service = settings.service()
    known = {r for row in settings.store().definitions.all()
             for r in service.definition(row["id"]).roles}
    administration(settings).grant(settings.require_actor(), username, role, org_code, known)
    click.echo(f"{username} is {role} at {org_code or 'the whole installation'}"
               f"{' and below' if org_code else ''}")


@user.command("list")
@format_option
@pass_settings
def user_list(settings: Settings, fmt: str) -> None:
    emit(settings.store().directory.users_with_grants(), fmt,
         ["username", "full_name", "role", "organization"])


# -- people -----------------------------------------------------------------------------------
@main.group()
def person() -> None:
    """People: applicants and members."""


@person.command("add")
@click.option("--name", required=True, help="Full name with diacritics.")
@click.option("--birth-date", required=True, help="dd/mm/yyyy or yyyy-mm-dd.")
@click.option("--gender", type=click.Choice(["female", "male"]), required=True)
@click.option("--ethnicity", default="Kinh", show_default=True)
@click.option("--religion", default="Không", show_default=True)
@click.option("--education", default="upper_secondary", show_default=True,
              type=click.Choice(["primary", "lower_secondary", "upper_secondary", "vocational",
                                 "college", "university", "postgraduate"]))
@click.option("--youth-union/--no-youth-union", default=False, help="Member of the Youth Union.")
@click.option("--trade-union/--no-trade-union", default=False, help="Member of a trade union.")
@pass_settings
def person_add(settings: Settings, name: str, birth_date: str, **fields: Any) -> None:
    """Register a person (any officer)."""
    from memberflow.workflow.dates import parse_date

    person_id = administration(settings).add_person(
        settings.require_actor(), name, parse_date(birth_date, "--birth-date"), **fields)
    click.echo(f"person #{person_id} added")


@person.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@pass_settings
def person_import(settings: Settings, file: Path) -> None:
    """Register everyone in a UTF-8 CSV file, or no one if any row is wrong.

    Columns: full_name, birth_date (required), gender (female/nữ, male/nam), ethnicity,
    religion, education, youth_union, trade_union (yes/no)."""
    from memberflow.app.csv_files import import_people

    imported = import_people(administration(settings), settings.require_actor(), file)
    ids = imported.ids
    span = f" (#{ids[0]}–#{ids[-1]})" if ids else ""
    people = "person" if len(ids) == 1 else "people"
    if imported.rerun:
        click.echo(f"already done: all {len(ids)} {people} of {file} are registered{span}; "
                   "nothing imported")
    else:
        click.echo(f"imported {len(ids)} {people}{span}")


@person.command("show")
@click.argument("person_id", type=RECORD_ID)
@format_option
@pass_settings
def person_show(settings: Settings, person_id: int, fmt: str) -> None:
    from memberflow.workflow.dates import format_date

    row = settings.store().directory.person(person_id)
    if fmt == "table":
        row["birth_date"] = format_date(row["birth_date"])
    cases = [c.id for c in settings.store().cases.of_person(person_id)]
    emit({**row, "cases": cases}, fmt)


@person.command("list")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@format_option
@pass_settings
def person_list(settings: Settings, limit: int, fmt: str) -> None:
    from memberflow.workflow.dates import format_date

    rows = settings.store().directory.people(limit)
    if fmt == "table":
        for row in rows:
            row["birth_date"] = format_date(row["birth_date"])
    emit(rows, fmt, ["id", "full_name", "birth_date", "gender", "ethnicity", "education"])


# -- cases ------------------------------------------------------------------------------------
@main.group()
def case() -> None:
    """Cases: one person's way through a procedure."""


@case.command("open")
@click.argument("person_id", type=RECORD_ID)
@click.option("--org", "org_code", required=True, metavar="CODE", help="The person's branch.")
@click.option("--definition", "definition_name", default="membership", show_default=True)
@click.option("--date", "date_text", help="Business date (default today).")
@pass_settings
def case_open(settings: Settings, person_id: int, org_code: str, definition_name: str,
              date_text: str | None) -> None:
    """Open a case for a person at their branch, on the latest definition version."""
    case_id = settings.service().open_case(settings.require_actor(), person_id, org_code,
                                           definition_name, business_date(date_text))
    click.echo(f"case {case_id} opened for person #{person_id} at {org_code}")


@case.command("readmit")
@click.argument("person_id", type=RECORD_ID)
@click.option("--org", "org_code", required=True, metavar="CODE", help="The person's branch now.")
@click.option("--definition", "definition_name", default="membership", show_default=True)
@click.option("--date", "date_text", help="Business date (default today).")
@click.option("-d", "--document", "documents", multiple=True, metavar="CODE[=REFERENCE]",
              help="A document filed with the readmission, e.g. the provincial consent (repeatable).")
@click.option("--declare", "declared", multiple=True, metavar="CATEGORY",
              help="A barred category the dossier shows applies (repeatable).")
@click.option("--exception", "exceptions", multiple=True, metavar="NAME",
              help="An exception the dossier establishes, e.g. family_hardship (repeatable).")
@click.option("--record-cleared-on", metavar="DATE",
              help="Date a criminal record for a less serious offence was cleared.")
@pass_settings
def case_readmit(settings: Settings, person_id: int, org_code: str, definition_name: str,
                 date_text: str | None, documents: tuple[str, ...], declared: tuple[str, ...],
                 exceptions: tuple[str, ...], record_cleared_on: str | None) -> None:
    """Open a readmission case linked to the person's earlier membership; every readmission
    rule of the definition is checked first, and a refusal lists each one broken."""
    from memberflow.workflow.dates import parse_date
    from memberflow.workflow.inputs import clean_text
    from memberflow.workflow.readmission import Claim

    attached = {code: clean_text(ref or code, f"document {code}", 500)
                for code, ref in key_values(documents, "--document").items()}
    claim = Claim(frozenset(declared), frozenset(exceptions),
                  parse_date(record_cleared_on, "--record-cleared-on") if record_cleared_on else None,
                  attached)
    case_id = settings.service().open_case(settings.require_actor(), person_id, org_code,
                                           definition_name, business_date(date_text), claim)
    earlier = settings.store().cases.load(case_id).facts["readmission_of"]
    click.echo(f"case {case_id} opened for person #{person_id} at {org_code}: readmission after "
               f"case {earlier}")


@case.command("advance")
@click.argument("case_id", type=RECORD_ID)
@click.argument("trigger")
@click.option("-i", "--input", "inputs", multiple=True, metavar="NAME=VALUE",
              help="A typed input of the move (repeatable).")
@click.option("-d", "--document", "documents", multiple=True, metavar="CODE[=REFERENCE]",
              help="A document attached with the move (repeatable).")
@click.option("--date", "date_text", help="Business date the move happened (default today).")
@click.option("--role", help="Role to act in, when you hold several that may fire the move.")
@lang_option
@format_option
@pass_settings
def case_advance(settings: Settings, case_id: int, trigger: str, inputs: tuple[str, ...],
                 documents: tuple[str, ...], date_text: str | None, role: str | None,
                 lang: str, fmt: str) -> None:
    """Make a move; refused moves print every rule that blocked them and write nothing."""
    from memberflow.workflow.dates import format_date
    from memberflow.workflow.inputs import clean_text

    attached = {code: clean_text(ref or code, f"document {code}", 500)
                for code, ref in key_values(documents, "--document").items()}
    service = settings.service()
    recorded = service.advance(
        settings.require_actor(), case_id, trigger, business_date(date_text),
        key_values(inputs, "--input"), attached, role)
    move = recorded.move
    due = move.due
    emit({"case": case_id, "seq": recorded.seq, "trigger": move.trigger,
          "from": move.from_state, "to": move.to_state, "label": move.to_labels.get(lang),
          "role": move.role,
          "business_date": format_date(move.business_date),
          "next_deadline": f"{due.trigger} by {format_date(due.due_on)}" if due else None}, fmt)


@case.command("advance-many")
@click.argument("trigger")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--date", "date_text", help="Business date for rows without a 'date' column (default today).")
@click.option("--all-or-nothing", is_flag=True, help="One transaction: any refused row writes nothing.")
@format_option
@pass_settings
def case_advance_many(settings: Settings, trigger: str, file: Path, date_text: str | None,
                      all_or_nothing: bool, fmt: str) -> None:
    """Make move TRIGGER on every case in a CSV file and report each row as it commits.

    Columns: case (required), date (dd/mm/yyyy, optional), role (optional), request_id
    (optional), one column per input of the move, and doc:CODE columns whose cells are
    document references. Running a file again reports the rows already applied as
    'already done' and applies only the others."""
    from dataclasses import asdict

    from memberflow.app.csv_files import advance_rows, summary
    from memberflow.workflow.dates import parse_date

    actor = settings.require_actor()
    service = settings.service()
    given = parse_date(date_text, "--date") if date_text else None
    total, results = advance_rows(service, actor, trigger, file, given, all_or_nothing)
    with _bar(total, "advancing", streamed=True) as bar, \
            RowStream(fmt, ["row", "case_id", "outcome", "detail"], ROW_WIDTHS) as out:
        for result in results:
            out.write(asdict(result), result.outcome)
            if bar:
                bar.update(1)
    click.echo(summary(out.counts), err=True)
    if out.counts.get("refused") or out.counts.get("bad row"):
        raise MoveRefused(f"not every row moved: {summary(out.counts)}")


ROW_WIDTHS = (5, 7, 12, 6)  # row, case_id, outcome ("already done"), detail


def _deadlines(service: Service, deadlines: Sequence[Any], on: date, lang: str,
               fmt: str) -> list[Any]:
    """Running deadlines as ``case show`` gives them. The table keeps the sentence
    ``decide_admission by 22/09/2026 (calendar VN 2026 v1 (…))``; JSON gives the fields: the
    move, the due date (ISO), working days left from ``on`` and the calendar version, all
    counted on the same calendar as the stored deadline ``due`` and ``tick`` read."""
    from memberflow.workflow.dates import format_date

    calendar = service.engine.calendar
    if fmt != "json":
        return [f"{d.trigger} by {format_date(d.due_on)} (calendar {calendar.version(d.due_on.year)})"
                for d in deadlines]
    rows = []
    for d in deadlines:
        left = calendar.working_days_between(on, d.due_on)
        rows.append({"move": d.trigger, "label": d.labels.get(lang), "due_on": d.due_on.isoformat(),
                     "working_days_left": left, "overdue": left < 0,
                     "calendar_version": calendar.version(d.due_on.year),
                     "counted_from": d.counted_from, "start": d.start.isoformat(),
                     "extended": d.extended})
    return rows


def _case_summary(service: Service, case_id: int, lang: str = "vi", fmt: str = "table") -> dict[str, Any]:
    from memberflow.workflow.dates import format_date, today
    from memberflow.workflow.presenting import state_row

    record = service.store.cases.load(case_id)
    definition = service.definition(record.definition_id)
    person = service.store.directory.person(record.person_id)
    state = state_row(definition, record.state, lang)
    return {
        "case": record.id, "person": f"{person['full_name']} (#{person['id']})",
        "organization": record.organization_code,
        "definition": f"{definition.name} ({record.definition_sha256[:12]})",
        "state": record.state, "label": state["label"], "stage": state["stage"],
        "opened_on": format_date(record.opened_on), "events": record.seq,
        "deadlines": _deadlines(service, service.deadlines(record), today(), lang, fmt),
        "facts": record.facts,
    }


@case.command("show")
@click.argument("case_id", type=RECORD_ID)
@lang_option
@click.option("--as-of", "as_of", metavar="DATE", help="The case as it stood on this business date.")
@click.option("--recorded-as-of", "recorded_as_of", metavar="TIME",
              help="The case as the database knew it at this UTC time (yyyy-mm-ddTHH:MM[:SS]).")
@format_option
@pass_settings
def case_show(settings: Settings, case_id: int, lang: str, as_of: str | None,
              recorded_as_of: str | None, fmt: str) -> None:
    """State, stage, running deadlines and recorded dates of a case (now, or as of a date)."""
    service = settings.service()
    warn_about_calendar(service)
    if as_of is None and recorded_as_of is None:
        emit(_case_summary(service, case_id, lang, fmt), fmt)
        return
    emit(_case_in_the_past(service, case_id, lang, as_of, recorded_as_of, fmt), fmt)


def _case_in_the_past(service: Service, case_id: int, lang: str, as_of: str | None,
                      recorded_as_of: str | None, fmt: str) -> dict[str, Any]:
    from memberflow.workflow.dates import format_date, parse_date, today
    from memberflow.workflow.engine import CaseView

    day = parse_date(as_of, "--as-of") if as_of else None
    known = _utc_timestamp(recorded_as_of) if recorded_as_of else None
    past = service.case_as_of(case_id, day, known)
    if past.state is None or past.definition is None:
        raise BadInput(f"case {case_id} did not exist yet at that point")
    if not past.ok:
        raise AuditFailed(f"case {case_id} cannot be replayed: {past.divergence}")
    state = past.definition.states[past.state]
    deadlines = service.engine.deadlines(past.definition, CaseView(past.state, past.facts))
    return {"case": case_id, "as_of": format_date(day) if day else None,
            "recorded_as_of": known, "state": past.state, "label": state.labels.get(lang),
            "stage": state.stage, "events": len(past.steps),
            "deadlines": _deadlines(service, deadlines, day or today(), lang, fmt),
            "facts": past.facts}


def _utc_timestamp(text: str) -> str:
    from datetime import UTC, datetime

    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    except (ValueError, OverflowError):
        raise BadInput(f"--recorded-as-of {text!r} is not a time; use yyyy-mm-ddTHH:MM") from None


@case.command("list")
@click.option("--org", "org_code", metavar="CODE", help="Only this organization and below.")
@click.option("--state", "states", multiple=True, help="Only cases in this state (repeatable).")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@lang_option
@format_option
@pass_settings
def case_list(settings: Settings, org_code: str | None, states: tuple[str, ...], limit: int,
              lang: str, fmt: str) -> None:
    """Cases, optionally of one organization's subtree or in given states."""
    from memberflow.workflow.dates import format_date

    service = settings.service()
    store = service.store
    known = {name for row in store.definitions.all()
             for name in service.definition(row["id"]).states}
    unknown = sorted(set(states) - known)
    if unknown:
        raise BadInput(f"unknown state {unknown[0]!r}; states: {', '.join(sorted(known))}")
    org_ids = store.directory.subtree_ids(org_code) if org_code else None
    rows = list(store.cases.listing(org_ids, list(states) or None, limit=limit))
    for row in rows:
        row["label"] = _state_label(service, row["definition_sha256"], row["state"], lang)
        if fmt == "table":
            row["opened_on"], row["due_on"] = format_date(row["opened_on"]), format_date(row["due_on"])
    emit(rows, fmt, ["id", "full_name", "organization", "state", "label", "opened_on", "due_move",
                     "due_on"])


def _state_label(service: Service, sha256: str, state: str, lang: str) -> str:
    definition = service.definition_by_sha(sha256)
    found = definition.states.get(state) if definition else None
    return found.labels.get(lang) if found else state


@case.command("history")
@click.argument("case_id", type=RECORD_ID)
@lang_option
@format_option
@pass_settings
def case_history(settings: Settings, case_id: int, lang: str, fmt: str) -> None:
    """Every audit event of the case; JSON adds evidence, definition version and hashes."""
    emit(_history_rows(settings.service(), case_id, lang, full=fmt == "json"), fmt,
         ["seq", "business_date", "trigger", "from", "to_label", "actor", "role", "inputs"])


def _history_rows(service: Service, case_id: int, lang: str,
                  full: bool = False) -> list[dict[str, Any]]:
    from memberflow.workflow.presenting import event_row

    record = service.store.cases.load(case_id)
    definition = service.definition(record.definition_id)
    return [event_row(e, definition, lang, full) for e in service.store.cases.history(case_id)]


@case.command("available")
@click.argument("case_id", type=RECORD_ID)
@click.option("--date", "date_text", help="Judge the rules as of this business date.")
@lang_option
@format_option
@pass_settings
def case_available(settings: Settings, case_id: int, date_text: str | None, lang: str,
                   fmt: str) -> None:
    """Each move possible now: may you make it, and which rules hold or block it."""
    actor = settings.require_actor()
    rows = []
    for item in settings.service().available(actor, case_id, business_date(date_text)):
        t = item.transition
        status = "ready" if not item.failures else "blocked"
        if item.role is None:
            status = "not your role"
        rows.append({
            "move": t.trigger, "label": t.labels.get(lang), "status": status,
            "roles": ", ".join(t.roles), "needs_inputs": ", ".join(item.needs_inputs) or "-",
            "documents": ", ".join(t.documents) or "-", "blocked_by": item.failures,
        })
    if fmt == "json":
        emit(rows, fmt)
        return
    click.echo(render_table(rows, ["move", "status", "roles", "needs_inputs", "documents"]))
    for row in rows:
        for reason in row["blocked_by"]:
            click.echo(f"  {row['move']}: {reason}")


# -- deadlines --------------------------------------------------------------------------------
@main.command()
@click.option("--as-of", "as_of", help="Business date to act as of (default today).")
@pass_settings
def tick(settings: Settings, as_of: str | None) -> None:
    """Make the moves time makes (those a definition marks automatic) and flag missed deadlines.

    Safe to run as often as wanted (e.g. nightly from cron): a second run changes nothing."""
    report = settings.service().tick(business_date(as_of))
    moved = ", ".join(f"{n} {trigger}" for trigger, n in sorted(report.moved.items())) or "none"
    recounted = f"; stored deadlines counted again on the calendar in force: {report.recounted}" \
        if report.recounted else ""
    click.echo(f"automatic moves made: {moved}; not yet due: {report.waiting}; "
               f"deadlines newly flagged overdue: {report.flagged}{recounted}")

@main.command()
@click.option("--org", "org_code", metavar="CODE", help="Only this organization and below.")
@click.option("--within", default=10, show_default=True, type=click.IntRange(0, 3650),
              help="Working days ahead to include.")
@click.option("--overdue", is_flag=True, help="Only deadlines already missed.")
@click.option("--as-of", "as_of", help="Judge as of this business date (default today).")
@lang_option
@format_option
@pass_settings
def due(settings: Settings, org_code: str | None, within: int, overdue: bool,
        as_of: str | None, lang: str, fmt: str) -> None:
    """Deadlines due or overdue, grouped by organization, fewest working days left first,
    with the calendar version each was counted on."""
    from datetime import timedelta

    from memberflow.workflow.dates import format_date

    service = settings.service()
    warn_about_calendar(service)
    calendar = service.engine.calendar
    today = business_date(as_of, "--as-of")
    until = today - timedelta(days=1) if overdue else calendar.add_working_days(today, within)
    store = settings.store()
    org_ids = store.directory.subtree_ids(org_code) if org_code else None
    rows = []
    for row in store.cases.listing(org_ids, due_until=until, limit=100_000):
        left = calendar.working_days_between(today, row["due_on"])
        rows.append({"organization": row["organization"], "case": row["id"],
                     "person": row["full_name"], "state": row["state"],
                     "label": _state_label(service, row["definition_sha256"], row["state"], lang),
                     "move": row["due_move"],
                     "due_on": format_date(row["due_on"]) if fmt == "table" else row["due_on"],
                     "working_days_left": left, "overdue": left < 0,
                     "calendar_version": row["due_calendar"],
                     "stale": row["due_calendar"] != calendar.version(row["due_on"].year)})
    rows.sort(key=lambda r: (r["organization"], r["working_days_left"], r["case"]))
    stale = sum(r["stale"] for r in rows)
    if stale:
        click.echo(f"warning: {stale} deadline(s) were stored on a calendar version other than "
                   "the one in force; 'memberflow tick' counts them again", err=True)
    if fmt == "json":
        emit(rows, fmt)
        return
    _grouped_by_organization(store, rows, lang)


def _grouped_by_organization(store: Store, rows: list[dict[str, Any]], lang: str) -> None:
    """One block per organization: its name, how many deadlines and how many are missed."""
    if not rows:
        click.echo("(none)")
        return
    codes = list(dict.fromkeys(r["organization"] for r in rows))
    names = {code: store.directory.organization(code)["name"] for code in codes}
    columns = ["case", "person", "label", "move", "due_on", "working_days_left", "calendar_version"]
    for code in codes:
        group = [r for r in rows if r["organization"] == code]
        late = sum(r["overdue"] for r in group)
        click.echo(f"{code} — {names.get(code, code)}: {len(group)} deadline(s)"
                   + (f", {late} overdue" if late else ""))
        click.echo(render_table(group, columns))
        click.echo("")


# -- annual assessment and screening -----------------------------------------------------------
@main.group()
def assess() -> None:
    """Yearly quality ratings of members (100-point scale) and months of absence, unpaid
    dues and no progress, which screening reads."""


@assess.command("record")
@click.argument("person_id", type=RECORD_ID)
@click.option("--year", required=True, type=int)
@click.option("--score", required=True, type=int, help="Points out of 100.")
@click.option("--rating", help="Rating, if lower than the score's band (default: the band).")
@click.option("--absence-months", default=0, type=int, help="Months absent from party activities.")
@click.option("--unpaid-dues-months", default=0, type=int, help="Months of party dues unpaid.")
@click.option("--no-progress-months", default=0, type=int, help="Months of education without progress.")
@pass_settings
def assess_record(settings: Settings, person_id: int, year: int, score: int, rating: str | None,
                  absence_months: int, unpaid_dues_months: int, no_progress_months: int) -> None:
    """Record one member's assessment for a year (a newer record corrects an older one)."""
    from memberflow.app.screening import Screening, YearRecord

    months = {"absence_months": absence_months, "unpaid_dues_months": unpaid_dues_months,
              "no_progress_months": no_progress_months}
    Screening(settings.service()).record(settings.require_actor(),
                                         [YearRecord(person_id, year, score, rating, months)])
    click.echo(f"assessment of person #{person_id} for {year} recorded")


@assess.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@pass_settings
def assess_import(settings: Settings, file: Path) -> None:
    """Record a year's assessments from a CSV file, all or none (rows equal to the newest
    record of their member and year are already recorded: a rerun adds nothing twice).

    Columns: person, year, score (required); rating, absence_months, unpaid_dues_months,
    no_progress_months (optional)."""
    from memberflow.app.screening import Screening

    count, unchanged = Screening(settings.service()).record_file(settings.require_actor(), file)
    again = f"; {unchanged} already recorded as given (not added again)" if unchanged else ""
    click.echo(f"{count} assessment(s) recorded from {file}{again}")


@assess.command("show")
@click.argument("person_id", type=RECORD_ID)
@lang_option
@format_option
@pass_settings
def assess_show(settings: Settings, person_id: int, lang: str, fmt: str) -> None:
    """Every assessment of a person, corrections included, oldest first."""
    from memberflow.app.screening import rating_labels

    service = settings.service()
    service.store.directory.person(person_id)
    labels = rating_labels(service, person_id, lang)
    rows = [{**row, "rating_label": labels.get(row["rating"], row["rating"])}
            for row in service.store.assessments.history(person_id)]
    emit(rows, fmt, ["year", "score", "rating", "rating_label", "absence_months",
                     "unpaid_dues_months", "no_progress_months", "recorded_by", "recorded_at"])


@main.command()
@click.option("--year", type=int, help="Year screened (default: this year).")
@click.option("--org", "org_code", metavar="CODE", help="Only members of this organization and below.")
@click.option("--open", "propose", is_flag=True,
              help="Propose striking off each member listed (skips pending proposals).")
@click.option("--date", "date_text", help="Business date of the proposals (default today).")
@lang_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="Output format.")
@pass_settings
def screen(settings: Settings, year: int | None, org_code: str | None, propose: bool,
           date_text: str | None, lang: str, fmt: str) -> None:
    """Members meeting a removal criterion of their definition, with the reason; with
    --open, a proposal to strike off is made on each (one move per case)."""
    from dataclasses import asdict

    from memberflow.app.screening import Screening

    on = business_date(date_text)
    screening = Screening(settings.service())
    listed = screening.screen(year or on.year, org_code)
    if not propose:
        _emit_listed(listed, lang, fmt)
        return
    actor = settings.require_actor()
    results = screening.propose(actor, listed, on)
    with _bar(len(listed), "proposing", streamed=True) as bar, \
            RowStream("json" if fmt == "json" else "table", ["row", "case_id", "outcome", "detail"],
                      ROW_WIDTHS) as out:
        for result in results:
            out.write(asdict(result), result.outcome)
            if bar:
                bar.update(1)
    counts = out.counts
    summary = (f"{counts.get('moved', 0)} proposed, {counts.get('skipped', 0)} already pending, "
               f"{counts.get('refused', 0)} refused of {len(listed)} listed")
    click.echo(summary, err=True)
    if counts.get("refused"):
        raise MoveRefused(f"not every proposal was made: {summary}")


def _emit_listed(listed: Sequence[Any], lang: str, fmt: str) -> None:
    rows = [{"case": m.case_id, "person": m.full_name, "person_id": m.person_id,
             "organization": m.organization, "state": m.state,
             "criteria": "; ".join(f.criterion.labels.get(lang) for f in m.findings),
             "grounds": ", ".join(dict.fromkeys(f.criterion.ground for f in m.findings)),
             "reasons": "; ".join(f.reason.get(lang) for f in m.findings),
             "pending_proposal": _shown_date(m.proposed_on) if fmt == "table" else m.proposed_on}
            for m in listed]
    columns = ["case", "person", "organization", "state", "criteria", "reasons", "pending_proposal"]
    if fmt == "csv":
        _write_csv(rows, [*columns, "person_id", "grounds"])
    else:
        emit(rows, fmt, columns)
        if fmt == "table":
            click.echo(f"{len(rows)} member(s) listed", err=True)


def _shown_date(iso: str | None) -> str | None:
    from datetime import date

    from memberflow.workflow.dates import format_date

    return format_date(date.fromisoformat(iso)) if iso else None




# -- definitions ------------------------------------------------------------------------------
@main.group()
def definition() -> None:
    """Procedure definitions (YAML): validate, lint, publish, approve, diff, graph, migrate."""


@definition.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def definition_validate(files: tuple[str, ...]) -> None:
    """Check definition files; every problem is reported with file and line."""
    from memberflow.workflow.loader import load_definition

    problems = []
    for file in files:
        try:
            loaded = load_definition(file)
        except DefinitionInvalid as error:
            problems.extend(error.problems)
            continue
        click.echo(f"{file}: ok ({loaded.name}: {len(loaded.states)} states, "
                   f"{len(loaded.transitions)} transitions, sha256 {loaded.sha256[:12]})")
    if problems:
        raise DefinitionInvalid(problems)


@definition.command("lint")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@pass_settings
def definition_lint(settings: Settings, files: tuple[str, ...], strict: bool) -> None:
    """Validate and lint files: every finding with file, line, and whether it blocks publishing.

    With a database (--db), also warns of moves no granted role can make."""
    from memberflow.workflow.lint import has_errors, lint
    from memberflow.workflow.loader import load_definition

    granted = _granted_roles(settings)
    blocking = []
    for file in files:
        findings = lint(load_definition(file), granted)
        for finding in findings:
            click.echo(str(finding))
        click.echo(f"{file}: {_count(findings, 'error')}, {_count(findings, 'warning')}")
        if has_errors(findings, strict):
            blocking.append(file)
    if blocking:
        raise BadInput(f"lint found {'problems' if strict else 'errors'} in {', '.join(blocking)}")


def _count(findings: Sequence[Any], severity: str) -> str:
    n = sum(1 for f in findings if f.severity == severity)
    return f"{n} {severity}{'' if n == 1 else 's'}"


def _granted_roles(settings: Settings) -> set[str] | None:
    """Roles held in the installation, when a database is named; lint works without one."""
    if not (settings.db or os.environ.get("MEMBERFLOW_DB")):
        return None
    return set(settings.store().directory.granted_roles())


@definition.command("publish")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--comment", required=True, help="Why this version (e.g. the regulation it implements).")
@click.option("--strict", is_flag=True, help="Refuse on lint warnings too.")
@pass_settings
def definition_publish(settings: Settings, file: Path, comment: str, strict: bool) -> None:
    """Validate, lint and store FILE as a new immutable version (administrators)."""
    from memberflow.app.publishing import Publishing

    published = Publishing(settings.store()).publish(settings.require_actor(), file, comment, strict)
    for finding in published.findings:
        click.echo(str(finding), err=True)
    row = published.version
    label = f"{row['name']}@{row['version']} (sha256 {row['sha256'][:12]})"
    if not published.is_new:
        click.echo(f"identical content is already stored as {label}, {row['status']}; nothing changed")
    elif row["status"] == "pending":
        click.echo(f"stored {label}, pending: another administrator must run "
                   f"'memberflow definition approve {row['name']}@{row['version']}'")
    else:
        click.echo(f"published {label}: new cases start on it; running cases stay on their version")


@definition.command("approve")
@click.argument("spec", metavar="NAME@VERSION")
@pass_settings
def definition_approve(settings: Settings, spec: str) -> None:
    """Approve a pending version published by another administrator (maker–checker)."""
    from memberflow.app.publishing import Publishing

    row = Publishing(settings.store()).approve(settings.require_actor(), spec)
    click.echo(f"{row['name']}@{row['version']} approved by {row['approved_by']}: published")


@definition.command("require-approval")
@click.argument("mode", type=click.Choice(["on", "off"]))
@pass_settings
def definition_require_approval(settings: Settings, mode: str) -> None:
    """Maker–checker: when on, a published version waits for a second administrator."""
    from memberflow.app.publishing import Publishing

    Publishing(settings.store()).set_approval(settings.require_actor(), mode == "on")
    click.echo(f"approval of new definition versions by a second administrator: {mode}")


@definition.command("list")
@format_option
@pass_settings
def definition_list(settings: Settings, fmt: str) -> None:
    """Every stored version of every definition."""
    emit(settings.store().definitions.all(), fmt, VERSION_COLUMNS)


@definition.command("history")
@click.argument("name")
@format_option
@pass_settings
def definition_history(settings: Settings, name: str, fmt: str) -> None:
    """The versions of NAME, oldest first: who published and approved each, and why."""
    rows = settings.store().definitions.all(name)
    if not rows:
        raise NotFound(f"no definition named {name} is stored")
    emit(rows, fmt, VERSION_COLUMNS + ["approved_by", "comment"])


VERSION_COLUMNS = ["name", "version", "status", "sha256", "author", "created_at"]


@definition.command("show")
@click.argument("spec", metavar="NAME[@VERSION]")
@lang_option
@format_option
@pass_settings
def definition_show(settings: Settings, spec: str, lang: str, fmt: str) -> None:
    """States and moves of a stored version (the newest published one by default)."""
    from memberflow.app.publishing import Publishing

    row, loaded = Publishing(settings.store()).stored(spec)
    states = [{"state": s.name, "stage": s.stage, "terminal": s.terminal,
               "label": s.labels.get(lang)} for s in loaded.states.values()]
    moves = [{"move": t.trigger, "from": ", ".join(t.sources), "to": t.dest or "(stays)",
              "roles": ", ".join(t.roles), "guards": ", ".join(g.name for g in t.guards) or "-",
              "documents": ", ".join(t.documents) or "-",
              "deadline": _deadline_text(t.deadline)} for t in loaded.transitions]
    if fmt == "json":
        emit({"name": loaded.name, "version": row["version"], "status": row["status"],
              "sha256": loaded.sha256, "states": states, "transitions": moves}, fmt)
        return
    click.echo(f"{loaded.name} v{row['version']} ({row['status']}, {loaded.sha256[:12]}): "
               f"{loaded.title.get(lang)}")
    click.echo(render_table(states))
    click.echo()
    click.echo(render_table(moves))


@definition.command("diff")
@click.argument("old", metavar="A")
@click.argument("new", metavar="B")
@pass_settings
def definition_diff(settings: Settings, old: str, new: str) -> None:
    """What changed from A to B (each a YAML file or a stored NAME@VERSION), in plain words."""
    from memberflow.workflow.diff import diff

    changes = diff(_definition_at(settings, old), _definition_at(settings, new))
    for change in changes:
        click.echo(str(change))
    click.echo(f"{len(changes)} change{'' if len(changes) == 1 else 's'}")


@definition.command("migrate")
@click.argument("name")
@click.option("--to", "version", type=click.IntRange(min=1), required=True, help="Target version number.")
@click.option("--map", "pairs", multiple=True, metavar="OLD=NEW",
              help="Where cases in a state the target version lacks should land (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print the impact report and change nothing.")
@click.option("--chunk", type=click.IntRange(min=1, max=10_000), default=500, show_default=True,
              help="Cases per transaction.")
@pass_settings
def definition_migrate(settings: Settings, name: str, version: int, pairs: tuple[str, ...],
                       dry_run: bool, chunk: int) -> None:
    """Move running cases of NAME to version --to (administrators); finished cases stay pinned."""
    from memberflow.app.repinning import Migrator

    actor = settings.require_actor()
    migrator = Migrator(settings.service())
    row, report = migrator.prepare(actor, name, version, pairs)
    _echo_impact(report)
    if dry_run or not report.cases:
        return
    with _bar(report.cases, "migrating") as bar:
        moved = migrator.apply(actor, row, report, chunk, bar.update if bar else None)
    click.echo(f"migrated {moved} case(s) to {name}@{version}; each has a migration event")


def _echo_impact(report: Any) -> None:
    rows = [{"from": f"v{v}", "state": state, "cases": n, "lands in": to or "STRANDED"}
            for (v, state, to), n in sorted(report.landings.items(), key=lambda i: (i[0][0], i[0][1]))]
    click.echo(f"{report.cases} running case(s) would move to "
               f"{report.target.name}@{report.target_version}:")
    click.echo(render_table(rows))
    for change, n in sorted(report.deadline_changes.items()):
        click.echo(f"open deadline change: {change} ({n} case{'' if n == 1 else 's'})")
    for fact, n in sorted(report.cleared.items()):
        click.echo(f"fact cleared (a step the old version closed, which the new one clears): "
                   f"{fact} ({n} case{'' if n == 1 else 's'})")
    if report.stranded:
        click.echo(f"states that vanish without a --map: {', '.join(report.vanishing)}")


def _definition_at(settings: Settings, spec: str) -> Any:
    """A YAML file (validated; no database needed) or a stored ``NAME[@VERSION]``."""
    from memberflow.app.publishing import Publishing
    from memberflow.workflow.loader import load_definition

    if Path(spec).is_file():
        return load_definition(spec)
    return Publishing(settings.store()).stored(spec)[1]


@definition.command("graph")
@click.argument("spec", metavar="NAME[@VERSION]|FILE")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid",
              show_default=True)
@lang_option
@click.option("-o", "output", type=click.Path(dir_okay=False, path_type=Path), callback=output_file,
              help="Write to this file instead of standard output.")
@pass_settings
def definition_graph(settings: Settings, spec: str, fmt: str, lang: str, output: Path | None) -> None:
    """The procedure as a diagram: states by stage, moves labeled with trigger and roles."""
    from memberflow.workflow.diagram import dot, mermaid

    text = (mermaid if fmt == "mermaid" else dot)(_definition_at(settings, spec), lang)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        click.echo(f"wrote {output}")


def _deadline_text(deadline: Any) -> str:
    if deadline is None:
        return "-"
    unit = "working days" if deadline.unit == "working_days" else "months"
    extra = f" (+{deadline.extension_working_days})" if deadline.extension_working_days else ""
    return f"{deadline.amount} {unit}{extra} from {deadline.start}"


# -- reports ----------------------------------------------------------------------------------
@main.group()
def report() -> None:
    """Figures from the record: admissions in a year, membership on a date, step durations."""


def report_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]),
                        default="table", show_default=True, help="Output format.")(func)
    func = lang_option(func)
    return click.option("--org", "org_code", metavar="CODE",
                        help="Only cases of this organization and below.")(func)


def _emit_report(found: Any, fmt: str) -> None:
    """Table: title line, rows, totals. CSV: the rows only (UTF-8). JSON: everything."""
    if fmt == "json":
        emit(found.as_json(), fmt)
    elif fmt == "csv":
        _write_csv(found.rows, found.columns)
    else:
        click.echo(found.title)
        click.echo(render_table(found.rows + found.totals, found.columns))


@report.command("admissions")
@click.option("--year", required=True, metavar="YYYY", help="Admission ceremonies held in this year.")
@click.option("--by", metavar="KEYS",
              help="Group by any of org, gender, ethnicity, religion, youth_union (comma-separated).")
@report_options
@pass_settings
def report_admissions(settings: Settings, year: str, by: str | None, org_code: str | None,
                      lang: str, fmt: str) -> None:
    """People admitted in YEAR, of whom women, ethnic minorities, religious, Youth Union members."""
    from memberflow.app.reports import Reports

    _emit_report(Reports(settings.service()).admissions(year, by, org_code, lang), fmt)


@report.command("membership")
@click.option("--as-of", "as_of", metavar="DATE", help="Business date (default today).")
@report_options
@pass_settings
def report_membership(settings: Settings, as_of: str | None, org_code: str | None, lang: str,
                      fmt: str) -> None:
    """Cases by organization on a date: running ones by stage, finished ones by final state."""
    from memberflow.app.reports import Reports
    from memberflow.workflow.dates import parse_date, today

    day = parse_date(as_of, "--as-of") if as_of else today()
    _emit_report(Reports(settings.service()).membership(day, org_code, lang), fmt)


@report.command("durations")
@click.option("--year", metavar="YYYY", help="Only moves made in this year.")
@report_options
@pass_settings
def report_durations(settings: Settings, year: str | None, org_code: str | None, lang: str,
                     fmt: str) -> None:
    """Median working days of each main-path step, and how many were made after their deadline."""
    from memberflow.app.reports import Reports

    _emit_report(Reports(settings.service()).durations(year, org_code, lang), fmt)


# -- audit ------------------------------------------------------------------------------------
@main.group()
def audit() -> None:
    """Auditors: verify the hash chains, checkpoint them, replay cases, export the record."""


def _progress(settings: Settings, label: str) -> Any:
    """A progress bar over all audit events when stderr is a terminal; otherwise silent."""
    return _bar(settings.store().cases.count_events() if sys.stderr.isatty() else 0, label)


@audit.command("verify")
@click.option("--case", "case_id", type=RECORD_ID, help="Only this case.")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also detect histories truncated or deleted since this checkpoint file.")
@format_option
@pass_settings
def audit_verify(settings: Settings, case_id: int | None, checkpoint_file: Path | None,
                 fmt: str) -> None:
    """Recompute every chain; report the first bad row of each broken case (exit 8)."""
    from memberflow.storage.verification import verify

    with _progress(settings, "verifying") as bar:
        report = verify(settings.store().db, case_id, checkpoint_file, bar.update if bar else None)
    summary = {"cases": report.cases, "events": report.events, "broken_cases": len(report.breaks),
               "checked_against_checkpoint": report.checkpoint_cases}
    if fmt == "json":
        emit({**summary, "breaks": [vars(b) for b in report.breaks]}, fmt)
    else:
        for found in report.breaks:
            click.echo(str(found))
        click.echo(f"verified {report.events} events in {report.cases} cases: "
                   f"{'all chains intact' if report.ok else f'{len(report.breaks)} broken'}")
    if case_id is not None and report.cases == 0:
        raise NotFound(f"case {case_id} has no record (no case row, no audit events)")
    if not report.ok:
        raise AuditFailed(f"{len(report.breaks)} case(s) fail verification")


@audit.command("checkpoint")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), callback=output_file,
              help="Also write the checkpoint (digest and every case head) to this file.")
@pass_settings
def audit_checkpoint(settings: Settings, output: Path | None) -> None:
    """One digest over all case heads; keep the file outside the database."""
    from memberflow.storage.verification import take_checkpoint

    taken = take_checkpoint(settings.store().db, output)
    click.echo(f"checkpoint {taken.digest} over {taken.cases} cases, {taken.events} events "
               f"at {taken.created_at}" + (f"; written to {output}" if output else ""))


@audit.command("replay")
@click.argument("case_id", type=RECORD_ID, required=False)
@click.option("--all", "every", is_flag=True, help="Replay every case.")
@format_option
@pass_settings
def audit_replay(settings: Settings, case_id: int | None, every: bool, fmt: str) -> None:
    """Rebuild cases from their events under the rules recorded on each event."""
    if every == (case_id is not None):
        raise BadInput("give a CASE or --all")
    if every:
        _replay_all(settings, fmt)
        return
    service = settings.service()
    service.store.cases.load(case_id)
    from memberflow.storage.verification import case_histories

    result = next((service.replayer().replay(cid, events)
                   for cid, events in case_histories(service.store.db, case_id)), None)
    if result is None:
        raise AuditFailed(f"case {case_id} has no audit events")
    rows = [_step_row(step) for step in result.steps]
    if fmt == "json":
        emit({"case": case_id, "ok": result.ok, "divergence": result.divergence, "steps": rows}, fmt)
    else:
        click.echo(render_table(rows))
        click.echo(f"case {case_id}: " + ("replay matches the record" if result.ok
                                          else f"DIVERGES at {result.divergence}"))
    if not result.ok:
        raise AuditFailed(f"case {case_id} diverges: {result.divergence}")


def _step_row(step: Any) -> dict[str, Any]:
    from memberflow.workflow.dates import format_date

    return {"seq": step.seq, "business_date": format_date(step.business_date),
            "trigger": step.trigger, "from": step.from_state or "-", "to": step.to_state,
            "actor": step.actor, "role": step.role}


def _replay_all(settings: Settings, fmt: str) -> None:
    service = settings.service()
    with _progress(settings, "replaying") as bar:
        summary = service.replay_all(bar.update if bar else None)
    divergent = [{"case": case_id, "divergence": why} for case_id, why in summary.divergent]
    if fmt == "json":
        emit({"cases": summary.cases, "events": summary.events, "divergent": divergent}, fmt)
    else:
        for row in divergent:
            click.echo(f"case {row['case']}: DIVERGES at {row['divergence']}")
        click.echo(f"replayed {summary.events} events in {summary.cases} cases: "
                   f"{'all legal under their rules' if not divergent else f'{len(divergent)} diverge'}")
    if divergent:
        raise AuditFailed(f"{len(divergent)} case(s) diverge from their rules")


@audit.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv",
              show_default=True)
@click.option("--since", metavar="DATE", help="Only events on or after this business date.")
@click.option("--case", "case_id", type=RECORD_ID, help="Only this case.")
@click.option("--org", "org_code", metavar="CODE", help="Only this organization and below.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), callback=output_file,
              help="Write to this file instead of standard output.")
@lang_option
@pass_settings
def audit_export(settings: Settings, fmt: str, since: str | None, case_id: int | None,
                 org_code: str | None, output: Path | None, lang: str) -> None:
    """Stream the audit record as CSV or JSON lines (UTF-8, labels kept)."""
    import csv
    import io

    from memberflow.storage.verification import export_rows
    from memberflow.workflow.dates import parse_date

    service = settings.service()
    start = parse_date(since, "--since").isoformat() if since else None
    org_ids = service.store.directory.subtree_ids(org_code) if org_code else None
    if case_id is not None:
        service.store.cases.load(case_id)  # an unknown case is "not found", not an empty export
    handle = output.open("w", encoding="utf-8", newline="") if output else None
    line = io.StringIO()
    writer = csv.DictWriter(line, EXPORT_COLUMNS)

    def put(text: str) -> None:
        if handle:
            handle.write(text)
        else:
            click.echo(text, nl=False)

    if fmt == "csv":
        writer.writeheader()
    for event in export_rows(service.store.db, start, case_id, org_ids):
        row = _export_row(service, event, lang)
        if fmt == "csv":
            writer.writerow(_spreadsheet_safe(row))
        else:
            line.write(json.dumps(row, ensure_ascii=False) + "\n")
        put(line.getvalue())
        line.seek(0)
        line.truncate()
    if handle:
        handle.close()


EXPORT_COLUMNS = ["case_id", "seq", "kind", "business_date", "recorded_at", "organization",
                  "person_id", "trigger", "from_state", "to_state", "to_label", "actor", "role",
                  "inputs", "documents", "definition_sha256", "prev_hash", "hash"]


def _export_row(service: Service, event: dict[str, Any], lang: str) -> dict[str, Any]:
    definition = service.definition_by_sha(event["definition_sha256"])
    state = definition.states.get(event["to_state"])
    payload = json.loads(event["payload"])
    day = event["business_date"]
    return {
        **{key: event[key] for key in EXPORT_COLUMNS if key in event},
        "business_date": day.isoformat() if hasattr(day, "isoformat") else day,
        "to_label": state.labels.get(lang) if state else event["to_state"],
        "inputs": json.dumps(payload.get("inputs", {}), ensure_ascii=False, sort_keys=True),
        "documents": json.dumps(payload.get("documents", {}), ensure_ascii=False, sort_keys=True),
    }


# -- demo -------------------------------------------------------------------------------------
@main.command()
@click.option("--db", "demo_db", metavar="PATH",
              help=f"SQLite file to build (default: the global --db path, else {DEMO_DB}). "
                   "An existing file is replaced only if it is an earlier demo database.")
@click.pass_context
def demo(ctx: click.Context, demo_db: str | None) -> None:
    """Build a provincial bloc and walk ~20 applicants through every stage."""
    from click.core import ParameterSource
    from memberflow.app.demo import run_demo
    from memberflow.app.service import Service
    from memberflow.storage.store import Store

    root = ctx.find_root()
    given = root.params.get("db") if root.get_parameter_source("db") == \
        ParameterSource.COMMANDLINE else None
    target = demo_db or given or DEMO_DB
    if "://" in target:
        raise BadInput("the demo builds an SQLite file: give a path, not a URL")
    path = Path(target)
    _clear_earlier_demo(path)
    store = Store(str(path), must_exist=False)
    store.create_schema()
    store.set_setting("demo", "true")
    service = Service(store)
    service.install_definitions(BUNDLED_DEFINITIONS)
    report = run_demo(service, echo=click.echo)
    click.echo()
    click.echo(f"Cases by stage and state (database: {path.resolve()}):")
    click.echo(render_table(report.summary))
    click.echo()
    click.echo(f"Full history of case {report.featured_case} ({report.featured_name}):")
    click.echo(render_table(_history_rows(service, report.featured_case, "vi"),
                            ["seq", "business_date", "trigger", "to_label", "actor", "role"]))
    click.echo()
    click.echo(f"Try: memberflow --db {path} --actor {report.sample_actor} case available "
               f"{report.sample_case}")
    click.echo(f"     memberflow --db {path} screen          # the members this year's screening lists")


def _clear_earlier_demo(path: Path) -> None:
    """Replace an earlier demo database, never anything else (a typo must not wipe real data)."""
    from memberflow.storage.store import Store

    if not path.exists():
        return
    try:
        is_demo = Store(str(path)).setting("demo") == "true"
    except Exception:  # noqa: BLE001 - not a database at all, or not ours
        is_demo = False
    if not is_demo:
        raise BadInput(f"refusing to replace {path}: it is not a memberflow demo database")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def run() -> None:
    main(prog_name="memberflow")


if __name__ == "__main__":
    sys.exit(main())
