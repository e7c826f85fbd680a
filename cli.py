"""memberflow command line: a thin shell over the application layer (``app``).

Each command group lives in ``commands/``: parse the options, establish the principal, call
one operation, render what it returns. Heavy modules (SQLAlchemy, transitions, holidays) are
imported inside commands so that ``memberflow --help`` starts fast. Every domain error is
mapped to an exit code in ``EXIT_CODES`` below and printed as one line (plus one line per
failed rule).
"""

from __future__ import annotations

import os
import sys
from contextlib import suppress
from typing import Any

import click
from memberflow.commands.assessment import assess, screen
from memberflow.commands.audit import audit
from memberflow.commands.calendar import calendar
from memberflow.commands.cases import case, due, tick
from memberflow.commands.context import Invocation
from memberflow.commands.definitions import definition
from memberflow.commands.directory import org, user
from memberflow.commands.people import person
from memberflow.commands.reports import report
from memberflow.commands.setup import db as db_group
from memberflow.commands.setup import demo, init
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
from memberflow.i18n import LANGUAGES, _
from memberflow.i18n import use as use_language

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
        click.echo(_("refused: {summary}").format(summary=error.summary), err=True)
        for reason in error.reasons:
            click.echo(f"  - {reason}", err=True)
    elif isinstance(error, DefinitionInvalid):
        click.echo(_("error: definition has {count} problem(s)").format(count=len(error.problems)),
                   err=True)
        for problem in error.problems:
            click.echo(f"  {problem}", err=True)
    else:
        click.echo(_("error: {error}").format(error=error), err=True)


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
            click.echo(_("error: {message} (see --help)").format(message=error.format_message()),
                       err=True)
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
            click.echo(_("error: {message} (see --help)").format(message=error.format_message()),
                       err=True)
            ctx.exit(EXIT_BAD_INPUT)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            if os.environ.get("MEMBERFLOW_DEBUG"):
                raise
            click.echo(_("internal error: {kind}: {error} (set MEMBERFLOW_DEBUG=1 for details)")
                       .format(kind=type(error).__name__, error=error), err=True)
            ctx.exit(EXIT_INTERNAL)


# -- root -----------------------------------------------------------------------------------
@click.group(cls=MemberflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--db", envvar="MEMBERFLOW_DB", metavar="URL|PATH",
              help="SQLAlchemy URL or SQLite file path [env MEMBERFLOW_DB; default ./memberflow.db]")
@click.option("--actor", envvar="MEMBERFLOW_ACTOR", metavar="USER",
              help="Who acts, on an SQLite file [env MEMBERFLOW_ACTOR]; on PostgreSQL, the user "
                   "your database login is linked to (--actor may only repeat it).")
@click.option("--lang", envvar="MEMBERFLOW_LANG", type=click.Choice(LANGUAGES), default="vi",
              show_default=True, help="Language of messages and labels [env MEMBERFLOW_LANG].")
@click.version_option(package_name="memberflow")
@click.pass_context
def main(ctx: click.Context, db: str | None, actor: str | None, lang: str) -> None:
    """Audited workflow for party membership: admission, probation, recognition, removal."""
    use_language(lang)
    ctx.obj = Invocation(db, actor, lang)


for command in (init, db_group, calendar, org, user, person, case, tick, due, assess, screen,
                definition, report, audit, demo):
    main.add_command(command)


def run() -> None:
    main(prog_name="memberflow")


if __name__ == "__main__":
    sys.exit(main())
