"""Options and arguments the commands share, and the parsing of what they take."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any

import click
from memberflow.commands.context import Invocation
from memberflow.errors import BadInput
from memberflow.i18n import LANGUAGES, _
from memberflow.i18n import use as use_language

RECORD_ID = click.IntRange(1, 2**63 - 1)
def _inherit_lang(ctx: click.Context, _param: click.Parameter, value: str | None) -> str:
    invocation = ctx.find_object(Invocation)
    lang = value or (invocation.lang if invocation else "vi")
    use_language(lang)
    return lang


def lang_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--lang`` on a command; without it, the language given to ``memberflow --lang``."""
    return click.option("--lang", type=click.Choice(LANGUAGES), default=None,
                        callback=_inherit_lang,
                        help="Language of labels (default: memberflow --lang, else vi).")(func)


def format_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--format", "fmt", type=click.Choice(["table", "json"]),
                        default="table", show_default=True, help="Output format.")(func)


def business_date(value: str | None, option: str = "--date") -> date:
    from memberflow.workflow.dates import parse_date, today

    return parse_date(value, option) if value else today()


def output_file(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
    """An -o file must be creatable: its folder exists (checked before any work is done)."""
    if value is not None and not value.resolve().parent.is_dir():
        raise BadInput(_("cannot write {path}: folder {folder} does not exist").format(
            path=value, folder=value.parent))
    return value


def key_values(pairs: Iterable[str], what: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not key.strip():
            raise BadInput(_("{what} {pair!r} must be NAME=VALUE").format(what=what, pair=pair))
        if key.strip() in result:
            raise BadInput(_("{what} {key} is given twice").format(what=what, key=key.strip()))
        result[key.strip()] = value if sep else ""
    return result


