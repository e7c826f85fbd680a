"""``memberflow report``: the figures a bloc publishes, from the record."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from memberflow.commands.context import Invocation, pass_invocation
from memberflow.commands.options import business_date, lang_option
from memberflow.commands.output import emit, render_table, write_csv


@click.group()
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
        write_csv(found.rows, found.columns)
    else:
        click.echo(found.title)
        click.echo(render_table(found.rows + found.totals, found.columns))


@report.command("admissions")
@click.option("--year", required=True, metavar="YYYY", help="Admission ceremonies held in this year.")
@click.option("--by", metavar="KEYS",
              help="Group by any of org, gender, ethnicity, religion, youth_union (comma-separated).")
@report_options
@pass_invocation
def report_admissions(invocation: Invocation, year: str, by: str | None, org_code: str | None,
                      lang: str, fmt: str) -> None:
    """People admitted in YEAR, of whom women, ethnic minorities, religious, Youth Union members."""
    reports = invocation.application().reports
    _emit_report(reports.admissions(invocation.principal(), year, by, org_code, lang), fmt)


@report.command("membership")
@click.option("--as-of", "as_of", metavar="DATE", help="Business date (default today).")
@report_options
@pass_invocation
def report_membership(invocation: Invocation, as_of: str | None, org_code: str | None, lang: str,
                      fmt: str) -> None:
    """Cases by organization on a date: running ones by stage, finished ones by final state."""
    reports = invocation.application().reports
    _emit_report(reports.membership(invocation.principal(), business_date(as_of, "--as-of"),
                                    org_code, lang), fmt)


@report.command("durations")
@click.option("--year", metavar="YYYY", help="Only moves made in this year.")
@report_options
@pass_invocation
def report_durations(invocation: Invocation, year: str | None, org_code: str | None, lang: str,
                     fmt: str) -> None:
    """Median working days of each main-path step, and how many were made after their deadline."""
    reports = invocation.application().reports
    _emit_report(reports.durations(invocation.principal(), year, org_code, lang), fmt)
