"""``memberflow person``: applicants and members."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from memberflow.commands.context import Invocation, pass_invocation
from memberflow.commands.options import RECORD_ID, format_option
from memberflow.commands.output import emit
from memberflow.i18n import _, ngettext
from memberflow.workflow.directory import EDUCATION_LEVELS, GENDERS, PERSON_DEFAULTS

ORG_HELP = ("Organization the person belongs to (default: the one you work at, if you work at "
            "one).")


@click.group()
def person() -> None:
    """People: applicants and members."""


@person.command("add")
@click.option("--name", required=True, help="Full name with diacritics.")
@click.option("--birth-date", required=True, help="dd/mm/yyyy or yyyy-mm-dd.")
@click.option("--gender", type=click.Choice(GENDERS), required=True)
@click.option("--ethnicity", default=PERSON_DEFAULTS["ethnicity"], show_default=True)
@click.option("--religion", default=PERSON_DEFAULTS["religion"], show_default=True)
@click.option("--education", default=PERSON_DEFAULTS["education"], show_default=True,
              type=click.Choice(EDUCATION_LEVELS))
@click.option("--youth-union/--no-youth-union", default=False, help="Member of the Youth Union.")
@click.option("--trade-union/--no-trade-union", default=False, help="Member of a trade union.")
@click.option("--org", "org_code", metavar="CODE", help=ORG_HELP)
@pass_invocation
def person_add(invocation: Invocation, name: str, birth_date: str, org_code: str | None,
               **fields: Any) -> None:
    """Register a person (any officer)."""
    from memberflow.workflow.dates import parse_date

    person_id = invocation.application().people.add(
        invocation.principal(), org_code, name, parse_date(birth_date, "--birth-date"), **fields)
    click.echo(_("person #{id} added").format(id=person_id))


@person.command("import")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--org", "org_code", metavar="CODE", help=ORG_HELP)
@pass_invocation
def person_import(invocation: Invocation, file: Path, org_code: str | None) -> None:
    """Register everyone in a UTF-8 CSV file, or no one if any row is wrong.

    Columns: full_name, birth_date (required), gender (female/nữ, male/nam), ethnicity,
    religion, education, youth_union, trade_union (yes/no)."""
    imported = invocation.application().people.import_file(invocation.principal(), org_code, file)
    ids = imported.ids
    span = f" (#{ids[0]}–#{ids[-1]})" if ids else ""
    if imported.rerun:
        click.echo(ngettext("already done: all {count} person of {file} are registered{span}; "
                            "nothing imported",
                            "already done: all {count} people of {file} are registered{span}; "
                            "nothing imported", len(ids)).format(count=len(ids), file=file, span=span))
    else:
        click.echo(ngettext("imported {count} person{span}", "imported {count} people{span}",
                            len(ids)).format(count=len(ids), span=span))


@person.command("show")
@click.argument("person_id", type=RECORD_ID)
@format_option
@pass_invocation
def person_show(invocation: Invocation, person_id: int, fmt: str) -> None:
    """A person's record: the fields the definition marks sensitive only for its roles."""
    from memberflow.workflow.dates import format_date

    shown = invocation.application().people.show(invocation.principal(), person_id)
    row = dict(shown.record)
    if fmt == "table":
        row["birth_date"] = format_date(row["birth_date"])
    emit({**row, "cases": shown.cases}, fmt)


@person.command("list")
@click.option("--limit", default=1000, show_default=True, type=click.IntRange(1, 100_000))
@format_option
@pass_invocation
def person_list(invocation: Invocation, limit: int, fmt: str) -> None:
    """The people you see (those of your organizations; everyone, for an auditor)."""
    from memberflow.workflow.dates import format_date

    rows = [dict(view.record) for view in
            invocation.application().people.listing(invocation.principal(), limit)]
    if fmt == "table":
        for row in rows:
            row["birth_date"] = format_date(row["birth_date"])
    emit(rows, fmt, ["id", "full_name", "birth_date", "gender", "ethnicity", "education"])
