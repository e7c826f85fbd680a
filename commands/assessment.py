"""``memberflow assess`` and ``memberflow screen``: yearly ratings and who they list."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from memberflow.commands.cases import stream_rows
from memberflow.commands.context import Invocation, pass_invocation
from memberflow.commands.options import RECORD_ID, business_date, format_option, lang_option
from memberflow.commands.output import emit, write_csv
from memberflow.errors import MoveRefused
from memberflow.i18n import _


@click.group()
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
@pass_invocation
def assess_record(invocation: Invocation, person_id: int, year: int, score: int, rating: str | None,
                  absence_months: int, unpaid_dues_months: int, no_progress_months: int) -> None:
    """Record one member's assessment for a year (a newer record corrects an older one)."""
    from memberflow.app.screening import YearRecord

    months = {"absence_months": absence_months, "unpaid_dues_months": unpaid_dues_months,
              "no_progress_months": no_progress_months}
    invocation.application().screening.record(
        invocation.principal(), YearRecord(person_id, year, score, rating, months))
    click.echo(_("assessment of person #{person} for {year} recorded").format(person=person_id,
                                                                              year=year))


@assess.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@pass_invocation
def assess_import(invocation: Invocation, file: Path) -> None:
    """Record a year's assessments from a CSV file, all or none (rows equal to the newest
    record of their member and year are already recorded: a rerun adds nothing twice).

    Columns: person, year, score (required); rating, absence_months, unpaid_dues_months,
    no_progress_months (optional)."""
    count, unchanged = invocation.application().screening.record_file(invocation.principal(), file)
    again = _("; {count} already recorded as given (not added again)").format(count=unchanged) \
        if unchanged else ""
    click.echo(_("{count} assessment(s) recorded from {file}{again}").format(
        count=count, file=file, again=again))


@assess.command("show")
@click.argument("person_id", type=RECORD_ID)
@lang_option
@format_option
@pass_invocation
def assess_show(invocation: Invocation, person_id: int, lang: str, fmt: str) -> None:
    """Every assessment of a person, corrections included, oldest first."""
    rows = invocation.application().screening.history(invocation.principal(), person_id, lang)
    emit(rows, fmt, ["year", "score", "rating", "rating_label", "absence_months",
                     "unpaid_dues_months", "no_progress_months", "recorded_by", "recorded_at"])


@click.command()
@click.option("--year", type=int, help="Year screened (default: this year).")
@click.option("--org", "org_code", metavar="CODE", help="Only members of this organization and below.")
@click.option("--open", "propose", is_flag=True,
              help="Propose striking off each member listed (skips pending proposals).")
@click.option("--date", "date_text", help="Business date of the proposals (default today).")
@lang_option
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="Output format.")
@pass_invocation
def screen(invocation: Invocation, year: int | None, org_code: str | None, propose: bool,
           date_text: str | None, lang: str, fmt: str) -> None:
    """Members meeting a removal criterion of their definition, with the reason; with
    --open, a proposal to strike off is made on each (one move per case)."""
    on = business_date(date_text)
    screening, principal = invocation.application().screening, invocation.principal()
    listed = screening.screen(principal, year or on.year, org_code)
    if not propose:
        _emit_listed(listed, lang, fmt)
        return
    counts = stream_rows(len(listed), screening.propose(principal, listed, on), _("proposing"), fmt)
    summary = _("{moved} proposed, {skipped} already pending, {refused} refused of {listed} "
                "listed").format(moved=counts.get("moved", 0), skipped=counts.get("skipped", 0),
                                 refused=counts.get("refused", 0), listed=len(listed))
    click.echo(summary, err=True)
    if counts.get("refused"):
        raise MoveRefused(_("not every proposal was made: {summary}").format(summary=summary))


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
        write_csv(rows, [*columns, "person_id", "grounds"])
    else:
        emit(rows, fmt, columns)
        if fmt == "table":
            click.echo(_("{count} member(s) listed").format(count=len(rows)), err=True)


def _shown_date(iso: str | None) -> str | None:
    from datetime import date

    from memberflow.workflow.dates import format_date

    return format_date(date.fromisoformat(iso)) if iso else None
