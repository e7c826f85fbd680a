"""Typed inputs an officer gives with a move, parsed from text into JSON-ready values.

Values are stored with the audit event exactly as parsed here, so replay sees the same
numbers and dates the guards saw.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any

from memberflow.errors import BadInput
from memberflow.i18n import _
from memberflow.workflow.dates import parse_date
from memberflow.workflow.definition import InputSpec, Transition

INPUT_TYPES = ("count", "int", "text", "date", "bool", "choice", "person", "introducers")
MAX_TEXT = 2000
# Control (Cc), format (Cf: e.g. U+202E right-to-left override), surrogate (Cs) and line or
# paragraph separator characters: invisible in a record, or able to disguise what it says.
HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Zl", "Zp"}
_WHOLE = re.compile(r"-?[0-9]+", re.ASCII)
_LARGEST = 2**63 - 1  # what the database and every stored payload can hold
_TRUE = {"yes", "true", "1", "y", "có", "co"}
_FALSE = {"no", "false", "0", "n", "không", "khong"}


def clean_text(value: str, what: str, max_length: int = MAX_TEXT) -> str:
    """NFC-normalize Vietnamese text and refuse empty, oversize or control-character values."""
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise BadInput(_("{what} is empty").format(what=what))
    if len(text) > max_length:
        raise BadInput(_("{what} is {count} characters long; at most {max_length} allowed").format(
                           what=what, count=len(text), max_length=max_length))
    if any(unicodedata.category(ch) in HIDDEN_CATEGORIES for ch in text):
        raise BadInput(_("{what} contains control characters").format(what=what))
    return text


def _integer(raw: Any, what: str) -> int:
    if isinstance(raw, bool):
        raise BadInput(_("{what} must be a whole number").format(what=what))
    if isinstance(raw, int):
        return raw
    text = str(raw).strip()
    if not _WHOLE.fullmatch(text):
        raise BadInput(_("{what} must be a whole number, not {raw!r}").format(what=what, raw=raw))
    if len(text) > 20 or abs(int(text)) > _LARGEST:
        raise BadInput(_("{what} is too large ({text}{value})").format(
                           what=what, text=text[:40], value='…' if len(text) > 40 else ''))
    return int(text)


def _person_id(raw: Any, what: str) -> int:
    value = _integer(raw, what)
    if not 0 < value < 2**63:
        raise BadInput(_("{what} must be a person id (a positive number)").format(what=what))
    return value


def _introducers(raw: Any, what: str) -> list[dict[str, int]]:
    """``12:14,15:20`` = person 12 known for 14 months, person 15 for 20 months."""
    if isinstance(raw, list):
        entries = [(item["person_id"], item["months"]) for item in raw]
    else:
        entries = []
        for part in str(raw).split(","):
            person, sep, months = part.strip().partition(":")
            if not sep:
                raise BadInput(_("{what} entry {part!r} must be PERSON_ID:MONTHS").format(
                                   what=what, part=part.strip()))
            entries.append((person, months))
    result = []
    for person, months in entries:
        count = _integer(months, _("{what} months").format(what=what))
        if count < 0:
            raise BadInput(_("{what} months must not be negative").format(what=what))
        result.append({"person_id": _person_id(person, what), "months": count})
    return result


def parse_bool(raw: Any, what: str) -> bool:
    """yes/no in English or Vietnamese (có/không), true/false, 1/0."""
    if isinstance(raw, bool):
        return raw
    word = str(raw).strip().lower()
    if word in _TRUE | _FALSE:
        return word in _TRUE
    raise BadInput(_("{what} must be yes or no, not {raw!r}").format(what=what, raw=raw))


def parse_value(spec: InputSpec, raw: Any) -> Any:
    what = _("input {name}").format(name=spec.name)
    match spec.type:
        case "count":
            value = _integer(raw, what)
            if value < 0:
                raise BadInput(_("{what} must not be negative (got {value})").format(what=what, value=value))
            return value
        case "int":
            return _integer(raw, what)
        case "text":
            return clean_text(str(raw), what)
        case "date":
            return parse_date(str(raw), what).isoformat()
        case "bool":
            return parse_bool(raw, what)
        case "choice":
            if str(raw) not in spec.choices:
                raise BadInput(_("{what} must be one of {choices}, not {raw!r}").format(
                                   what=what, choices=', '.join(spec.choices), raw=raw))
            return str(raw)
        case "person":
            return _person_id(raw, what)
        case "introducers":
            return _introducers(raw, what)
    raise BadInput(_("{what} has unknown type {type}").format(what=what, type=spec.type))


def parse_inputs(transition: Transition, raw: Mapping[str, Any]) -> dict[str, Any]:
    """Parse every given input; unknown names and missing required inputs are bad input."""
    specs = transition.input_specs
    if not raw.keys() <= specs.keys():
        unknown = sorted(set(raw) - set(specs))
        expected = ", ".join(specs) or "none"
        raise BadInput(_("move {trigger} takes no input {unknown} (inputs: {expected})").format(
                           trigger=transition.trigger, unknown=unknown[0], expected=expected))
    missing = [name for name, spec in specs.items() if spec.required and name not in raw]
    if missing:
        raise BadInput(_("move {trigger} needs input {missing}").format(
                           trigger=transition.trigger, missing=', '.join(missing)))
    return {name: parse_value(specs[name], value) for name, value in raw.items()}
