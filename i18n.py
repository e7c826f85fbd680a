"""Program messages through gettext: Vietnamese by default, English on request.

Every sentence the program says (refusal reasons, errors, headers, summaries) is written in
English in the source, marked with ``_()`` (or ``N_()`` where it is only named, to be
translated later), extracted with Babel into ``locale/memberflow.pot`` and translated in the
committed catalogues ``locale/vi`` and ``locale/en``; ``make`` compiles them to ``.mo``.
Labels of states, moves, roles and documents are not messages: they live in the definition
YAML, where administrators edit them.

The language in force is held in a context variable, so a front end sets it once (the CLI,
from ``--lang``) or per request (the web app) and every layer below speaks it.
"""

from __future__ import annotations

import gettext
from contextvars import ContextVar
from pathlib import Path

DOMAIN = "memberflow"
LOCALES = Path(__file__).resolve().parent / "locale"
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"

_catalogues: dict[str, gettext.NullTranslations] = {}
_language: ContextVar[str] = ContextVar("memberflow_language", default=DEFAULT_LANGUAGE)


def catalogue(lang: str) -> gettext.NullTranslations:
    """The compiled catalogue of a language (loaded once per process)."""
    found = _catalogues.get(lang)
    if found is None:
        try:
            found = gettext.translation(DOMAIN, LOCALES, [lang])
        except OSError:
            # Not compiled yet (a checkout before `make`): the English source text stands in.
            found = gettext.NullTranslations()
        _catalogues[lang] = found
    return found


def use(lang: str) -> None:
    """Speak ``lang`` from now on in this context (a CLI run, a web request)."""
    if lang not in LANGUAGES:
        raise ValueError(f"unknown language {lang!r}")
    _language.set(lang)


def language() -> str:
    return _language.get()


def _(message: str) -> str:
    """The message in the language in force."""
    return catalogue(_language.get()).gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return catalogue(_language.get()).ngettext(singular, plural, count)


def pgettext(context: str, message: str) -> str:
    """A message whose bare English word needs a context to be translated (a column heading)."""
    return catalogue(_language.get()).pgettext(context, message)


def NC_(context: str, message: str) -> str:
    """``N_`` with a context: marked now, translated later with ``pgettext``."""
    return message


def N_(message: str) -> str:
    """Marks a message for extraction where it is named now and translated when shown."""
    return message
