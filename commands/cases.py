"""``memberflow case``, ``tick`` and ``due``: officers' daily work."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import click
from memberflow.commands.calendar import warn_about_calendar
from memberflow.commands.context import Invocation, pass_invocation
from memberflow.commands.options import RECORD_ID, business_date, format_option, key_values, lang_option
from memberflow.commands.output import RowStream, emit, progress_bar, render_table
from memberflow.errors import MoveRefused
from memberflow.i18n import N_, _

ROW_WIDTHS = (5, 7, 12, 6)  # row, case_id, outcome ("already done"), detail
ROW_COLUMNS = ["row", "case_id", "outcome", "detail"]


@click.group()
def case() -> None:
    """Cases: one person's way through a procedure."""


@case.command("open")
@click.argument("person_id", type=RECORD_ID)
@click.option("--org", "org_code", required=True, metavar="CODE", help="The person's branch.")
@click.option("--definition", "definition_name", default="membership", show_default=True)
@click.option("--date", "date_text", help="Business date (default today).")
@pass_invocation
def case_open(invocation: Invocation, person_id: int, org_code: str, definition_name: str,
              date_text: str | None) -> None:
    """Open a case for a person at their branch, on the latest definition version."""
    case_id = invocation.application().cases.open(invocation.principal(), person_id, org_code,
                                                  definition_name, business_date(date_text))
    click.echo(_("case {case} opened for person #{person} at {org}").format(
        case=case_id, person=person_id, org=org_code))


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
@pass_invocation
def case_readmit(invocation: Invocation, person_id: int, org_code: str, definition_name: str,
                 date_text: str | None, documents: tuple[str, ...], declared: tuple[str, ...],
                 exceptions: tuple[str, ...], record_cleared_on: str | None) -> None:
    """Open a readmission case linked to the person's earlier membership; every readmission
    rule of the definition is checked first, and a refusal lists each one broken."""
    from memberflow.app.cases import Readmission
    from memberflow.workflow.dates import parse_date

    claim = Readmission(key_values(documents, "--document"), frozenset(declared),
                        frozenset(exceptions),
                        parse_date(record_cleared_on, "--record-cleared-on") if record_cleared_on else None)
    cases, principal = invocation.application().cases, invocation.principal()
    case_id = cases.open(principal, person_id, org_code, definition_name, business_date(date_text),
                         claim)
    click.echo(_("case {case} opened for person #{person} at {org}: readmission after case "
                 "{earlier}").format(case=case_id, person=person_id, org=org_code,
                                     earlier=cases.readmitted_after(principal, case_id)))


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
@pass_invocation
def case_advance(invocation: Invocation, case_id: int, trigger: str, inputs: tuple[str, ...],
                 documents: tuple[str, ...], date_text: str | None, role: str | None,
                 lang: str, fmt: str) -> None:
    """Make a move; refused moves print every rule that blocked them and write nothing."""
    from memberflow.workflow.dates import format_date

    recorded = invocation.application().cases.advance(
        invocation.principal(), case_id, trigger, business_date(date_text),
        key_values(inputs, "--input"), key_values(documents, "--document"), role)
    move = recorded.move
    due = move.due
    emit({"case": case_id, "seq": recorded.seq, "trigger": move.trigger,
          "from": move.from_state, "to": move.to_state, "label": move.to_labels.get(lang),
          "role": move.role,
          "business_date": format_date(move.business_date),
          "next_deadline": _("{move} by {day}").format(move=due.trigger, day=format_date(due.due_on))
          if due else None}, fmt)


@case.command("advance-many")
@click.argument("trigger")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--date", "date_text", help="Business date for rows without a 'date' column (default today).")
@click.option("--all-or-nothing", is_flag=True, help="One transaction: any refused row writes nothing.")
@format_option
@pass_invocation
def case_advance_many(invocation: Invocation, trigger: str, file: Path, date_text: str | None,
                      all_or_nothing: bool, fmt: str) -> None:
    """Make move TRIGGER on every case in a CSV file and report each row as it commits.

    Columns: case (required), date (dd/mm/yyyy, optional), role (optional), request_id
    (optional), one column per input of the move, and doc:CODE columns whose cells are
    document references. Running a file again reports the rows already applied as
    'already done' and applies only the others."""
    from memberflow.app.csv_files import summary
    from memberflow.workflow.dates import parse_date

    given = parse_date(date_text, "--date") if date_text else None
    total, results = invocation.application().cases.advance_file(
        invocation.principal(), trigger, file, given, all_or_nothing)
    counts = stream_rows(total, results, _("advancing"), fmt)
    click.echo(summary(counts), err=True)
    if counts.get("refused") or counts.get("bad row"):
        raise MoveRefused(_("not every row moved: {summary}").format(summary=summary(counts)))


def stream_rows(total: int, results: Any, label: str, fmt: str) -> dict[str, int]:
    """Each row's result printed as soon as its transaction has committed; the counts."""
    with progress_bar(total, label, streamed=True) as bar, \
            RowStream("json" if fmt == "json" else "table", ROW_COLUMNS, ROW_WIDTHS) as out:
        for result in results:
            out.write(asdict(result), result.outcome)
            if bar:
                bar.update(1)
    return out.counts


def _deadline_rows(deadlines: list[Any], fmt: str) -> list[Any]:
    """Running deadlines as ``case show`` gives them: the table a sentence per deadline, JSON
    the fields (ISO dates)."""
    from memberflow.workflow.dates import format_date

    if fmt != "json":
        return [_("{move} by {day} (calendar {version})").format(
            move=d.move, day=format_date(d.due_on), version=d.calendar_version) for d in deadlines]
    return [{"move": d.move, "label": d.label, "due_on": d.due_on.isoformat(),
             "working_days_left": d.working_days_left, "overdue": d.overdue,
             "calendar_version": d.calendar_version, "counted_from": d.counted_from,
             "start": d.start.isoformat(), "extended": d.extended} for d in deadlines]


@case.command("show")
@click.argument("case_id", type=RECORD_ID)
@lang_option
@click.option("--as-of", "as_of", metavar="DATE", help="The case as it stood on this business date.")
@click.option("--recorded-as-of", "recorded_as_of", metavar="TIME",
              help="The case as the database knew it at this UTC time (yyyy-mm-ddTHH:MM[:SS]).")
@format_option
@pass_invocation
def case_show(invocation: Invocation, case_id: int, lang: str, as_of: str | None,
              recorded_as_of: str | None, fmt: str) -> None:
    """State, stage, running deadlines and recorded dates of a case (now, or as of a date)."""
    from memberflow.workflow.dates import format_date, parse_date

    cases, principal = invocation.application().cases, invocation.principal()
    warn_about_calendar(invocation)
    if as_of is None and recorded_as_of is None:
        shown = cases.show(principal, case_id, lang)
        emit({"case": shown.case, "person": f"{shown.person_name} (#{shown.person_id})",
              "organization": shown.organization,
              "definition": f"{shown.definition} ({shown.definition_sha256[:12]})",
              "state": shown.state, "label": shown.label, "stage": shown.stage,
              "opened_on": format_date(shown.opened_on), "events": shown.events,
              "deadlines": _deadline_rows(shown.deadlines, fmt), "facts": shown.facts}, fmt)
        return
    day = parse_date(as_of, "--as-of") if as_of else None
    past = cases.show_past(principal, case_id, day, recorded_as_of, lang)
    emit({"case": past.case, "as_of": format_date(day) if day else None,
          "recorded_as_of": past.recorded_as_of, "state": past.state, "label": past.label,
          "stage": past.stage, "events": past.events,
          "deadlines": _deadline_rows(past.deadlines, fmt), "facts": past.facts}, fmt)


@case.command("list")
@click.option("--org", "org_code", metavar="CODE", help="Only this organization and below.")
@click.option("--state", "states", multiple=True, help="Only cases in this state (repeatable).")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@lang_option
@format_option
@pass_invocation
def case_list(invocation: Invocation, org_code: str | None, states: tuple[str, ...], limit: int,
              lang: str, fmt: str) -> None:
    """Cases you see, optionally of one organization's subtree or in given states."""
    from memberflow.workflow.dates import format_date

    rows = invocation.application().cases.listing(invocation.principal(), org_code, states,
                                                  limit, lang)
    if fmt == "table":
        for row in rows:
            row["opened_on"], row["due_on"] = format_date(row["opened_on"]), format_date(row["due_on"])
    emit(rows, fmt, ["id", "full_name", "organization", "state", "label", "opened_on", "due_move",
                     "due_on"])


@case.command("history")
@click.argument("case_id", type=RECORD_ID)
@lang_option
@format_option
@pass_invocation
def case_history(invocation: Invocation, case_id: int, lang: str, fmt: str) -> None:
    """Every audit event of the case; JSON adds evidence, definition version and hashes."""
    rows = invocation.application().cases.history(invocation.principal(), case_id, lang,
                                                  full=fmt == "json")
    emit(rows, fmt, ["seq", "business_date", "trigger", "from", "to_label", "actor", "role", "inputs"])


@case.command("available")
@click.argument("case_id", type=RECORD_ID)
@click.option("--date", "date_text", help="Judge the rules as of this business date.")
@lang_option
@format_option
@pass_invocation
def case_available(invocation: Invocation, case_id: int, date_text: str | None, lang: str,
                   fmt: str) -> None:
    """Each move possible now: may you make it, and which rules hold or block it."""
    moves = invocation.application().cases.available(invocation.principal(), case_id,
                                                     business_date(date_text), lang)
    rows = [{"move": m.move, "label": m.label,
             "status": m.status if fmt == "json" else _(STATUSES[m.status]),
             "roles": ", ".join(m.roles), "needs_inputs": ", ".join(m.needs_inputs) or "-",
             "documents": ", ".join(m.documents) or "-", "blocked_by": m.blocked_by}
            for m in moves]
    if fmt == "json":
        emit(rows, fmt)
        return
    click.echo(render_table(rows, ["move", "status", "roles", "needs_inputs", "documents"]))
    for row in rows:
        for reason in row["blocked_by"]:
            click.echo(f"  {row['move']}: {reason}")


STATUSES = {"ready": N_("ready"), "blocked": N_("blocked"), "not your role": N_("not your role")}


@click.command()
@click.option("--as-of", "as_of", help="Business date to act as of (default today).")
@pass_invocation
def tick(invocation: Invocation, as_of: str | None) -> None:
    """Make the moves time makes (those a definition marks automatic) and flag missed deadlines.

    Safe to run as often as wanted (e.g. nightly from cron): a second run changes nothing."""
    report = invocation.application().cases.tick(invocation.principal(), business_date(as_of))
    moved = ", ".join(f"{n} {trigger}" for trigger, n in sorted(report.moved.items())) or _("none")
    recounted = _("; stored deadlines counted again on the calendar in force: {count}").format(
        count=report.recounted) if report.recounted else ""
    click.echo(_("automatic moves made: {moved}; not yet due: {waiting}; deadlines newly flagged "
                 "overdue: {flagged}{recounted}").format(moved=moved, waiting=report.waiting,
                                                         flagged=report.flagged, recounted=recounted))


@click.command()
@click.option("--org", "org_code", metavar="CODE", help="Only this organization and below.")
@click.option("--within", default=10, show_default=True, type=click.IntRange(0, 3650),
              help="Working days ahead to include.")
@click.option("--overdue", is_flag=True, help="Only deadlines already missed.")
@click.option("--as-of", "as_of", help="Judge as of this business date (default today).")
@lang_option
@format_option
@pass_invocation
def due(invocation: Invocation, org_code: str | None, within: int, overdue: bool,
        as_of: str | None, lang: str, fmt: str) -> None:
    """Deadlines due or overdue, grouped by organization, fewest working days left first,
    with the calendar version each was counted on."""
    from memberflow.workflow.dates import format_date

    warn_about_calendar(invocation)
    report = invocation.application().cases.due(invocation.principal(), org_code, within, overdue,
                                                business_date(as_of, "--as-of"), lang)
    if report.stale:
        click.echo(_("warning: {count} deadline(s) were stored on a calendar version other than "
                     "the one in force; 'memberflow tick' counts them again").format(count=report.stale),
                   err=True)
    if fmt == "json":
        emit([asdict(r) for r in report.rows], fmt)
        return
    if not report.rows:
        click.echo(_("(none)"))
        return
    columns = ["case", "person", "label", "move", "due_on", "working_days_left", "calendar_version"]
    for group in report.groups:
        heading = _("{code} — {name}: {count} deadline(s)").format(
            code=group.organization, name=group.name, count=len(group.rows))
        if group.overdue:
            heading += _(", {count} overdue").format(count=group.overdue)
        click.echo(heading)
        click.echo(render_table([{**asdict(r), "due_on": format_date(r.due_on)} for r in group.rows],
                                columns))
        click.echo("")
