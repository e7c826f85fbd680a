"""``memberflow calendar``: the working-day calendar deadlines are counted on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from memberflow.commands.context import Invocation, pass_invocation
from memberflow.commands.options import format_option, lang_option
from memberflow.commands.output import emit
from memberflow.errors import BadInput
from memberflow.i18n import N_, _, pgettext


@click.group()
def calendar() -> None:
    """The working-day calendar deadlines are counted on: the holiday data stored in the
    database (a snapshot of the holidays package's VN days) plus administrators' overrides."""


def warn_about_calendar(invocation: Invocation) -> None:
    """One line on stderr when the holiday data should be refreshed (deadlines keep being
    counted on the snapshot in force)."""
    for warning in invocation.application().calendar.warnings():
        click.echo(_("warning: {warning}").format(warning=warning), err=True)


@calendar.command("show")
@click.argument("year", type=click.IntRange(1990, 2100))
@lang_option
@format_option
@pass_invocation
def calendar_show(invocation: Invocation, year: int, lang: str, fmt: str) -> None:
    """Public holidays (named in --lang), swapped days and overrides of YEAR, and the
    calendar's version."""
    warn_about_calendar(invocation)
    shown = invocation.application().calendar.year(invocation.principal(), year, lang)
    data = shown.holidays
    if fmt == "json":
        emit({"calendar": shown.version,
              "holiday_data": {"snapshot": data.snapshot, "package": "holidays",
                               "package_version": data.package_version, "sha256": data.digest,
                               "years": [data.first_year, data.last_year]},
              "days": shown.days}, fmt)
        return
    emit(shown.days, fmt)
    click.echo(_("calendar {version}; holiday data {data}").format(version=shown.version,
                                                                   data=data.describe()))
    if not shown.covered:
        click.echo(_("the holiday data does not cover {year}: only weekends and overrides count")
                   .format(year=year))


@calendar.command("load")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@pass_invocation
def calendar_load(invocation: Invocation, file: Path) -> None:
    """Apply a yearly calendar file (administrators): every problem is reported with its line
    and nothing is applied; days the calendar already counts that way are skipped. Stored
    deadlines the added days move are counted again in the same transaction."""
    from memberflow.commands.setup import echo_calendar_loaded

    app = invocation.application()
    echo_calendar_loaded(app.installation.load_calendar(invocation.principal().username, file))


@calendar.command("set-day")
@click.argument("day", metavar="DATE")
@click.option("--off", is_flag=True, help="An extra day off.")
@click.option("--working", is_flag=True, help="A working day (e.g. a swapped Saturday).")
@click.option("--reason", required=True, help="The decision that sets it (e.g. the Prime Minister's notice).")
@pass_invocation
def calendar_set_day(invocation: Invocation, day: str, off: bool, working: bool, reason: str) -> None:
    """Override one day (administrators); the open deadlines it moves are counted again in
    the same transaction."""
    from memberflow.workflow.dates import format_date, parse_date

    if off == working:
        raise BadInput(_("say whether the day is --off or --working (one of them)"))
    when = parse_date(day, "DATE")
    operations = invocation.application().calendar
    recounted = operations.set_day(invocation.principal(), when, working, reason)
    click.echo((_("{day} is now a working day; calendar {version}") if working else
                _("{day} is now a day off; calendar {version}")).format(
        day=format_date(when), version=operations.version(when.year)))
    echo_moved(recounted.moved, pgettext("deadline", "moved"))


@calendar.command("refresh")
@click.option("--dry-run", is_flag=True, help="Show what would change; write nothing.")
@lang_option
@format_option
@pass_invocation
def calendar_refresh(invocation: Invocation, dry_run: bool, lang: str, fmt: str) -> None:
    """Take the installed holidays package's day list as the holiday data (administrators):
    lists the days added, removed, changed and renamed against the snapshot in force and every
    open deadline that moves; without --dry-run stores it as a new snapshot, recorded with
    who and when, and counts those deadlines again, in one transaction."""
    principal = invocation.principal()
    refresh = invocation.application().calendar.refresh(principal, dry_run)
    if fmt == "json":
        emit(_refresh_json(refresh, lang), fmt)
        return
    click.echo(_("holiday data in force: {data}").format(data=refresh.before.describe()))
    click.echo(_("installed package:     holidays {version}, {first}–{last}, sha256 {sha}").format(
        version=refresh.after.package_version, first=refresh.after.first_year,
        last=refresh.after.last_year, sha=refresh.after.digest[:12]))
    if refresh.nothing_to_do:
        click.echo(_("the holiday data is current; nothing to do"))
        return
    for change in refresh.days:
        click.echo(_day_change_text(change, lang))
    echo_moved(refresh.recounted.moved, pgettext("deadline", "moved") if refresh.applied else _("would move"))
    if refresh.applied:
        click.echo(_("applied: holiday data {data}, recorded by {user}").format(
            data=refresh.after.describe(), user=principal.username))
    else:
        click.echo(_("dry run: nothing written; run without --dry-run to apply"))


def _day_change_text(change: Any, lang: str) -> str:
    from memberflow.workflow.dates import format_date

    def state(day: Any) -> str:
        kind = _("working") if day.working else _("day off")
        return f"{kind}, {day.name(lang)}"

    when = f"{format_date(change.day)} {change.day.strftime('%a')}"
    kind = _(DAY_CHANGES[change.kind])
    if change.kind == "added":
        return f"{kind:<8} {when}  {state(change.after)}"
    if change.kind == "removed":
        return f"{kind:<8} {when}  {state(change.before)}"
    return f"{kind:<8} {when}  {state(change.before)} → {state(change.after)}"


DAY_CHANGES = {"added": N_("added"), "removed": N_("removed"), "changed": N_("changed"),
               "renamed": N_("renamed")}


def moved_text(moved: Any) -> str:
    from memberflow.workflow.dates import format_date

    after = moved.after
    new = _("no deadline") if after is None else (
        format_date(after.on) if after.move == moved.before.move else f"{after.move} {format_date(after.on)}")
    return _("case {case}: {move} {before} → {after}").format(
        case=moved.case_id, move=moved.before.move, before=format_date(moved.before.on), after=new)


def echo_moved(moved: Sequence[Any], verb: str) -> None:
    click.echo(_("open deadlines that {verb}: {count}").format(verb=verb, count=len(moved)))
    for item in moved:
        click.echo(f"  {moved_text(item)}")


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
