"""Rules of the directory: the kinds of organization, the roles every installation has, the
names no user may take, and what makes a person's record acceptable.

These are domain values, kept in one place so every front end offers the same choices
(the CLI's option lists, the web app's forms) without copies.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from memberflow.errors import BadInput
from memberflow.i18n import _
from memberflow.workflow.dates import format_date, today
from memberflow.workflow.guards import EDUCATION_LEVELS
from memberflow.workflow.inputs import clean_text

ADMINISTRATOR, AUDITOR = "administrator", "auditor"
SYSTEM_ROLES = (ADMINISTRATOR, AUDITOR)
# The actor recorded on moves ``memberflow tick`` makes; no user may take this name.
TICK_ACTOR = "memberflow-tick"
ORGANIZATION_KINDS = ("province_committee", "committee_above", "grassroots", "branch")
GENDERS = ("female", "male")
# What a person's record says when the officer gives nothing else.
PERSON_DEFAULTS = {"ethnicity": "Kinh", "religion": "Không", "education": "upper_secondary",
                   "youth_union": False, "trade_union": False}
__all__ = ["ADMINISTRATOR", "AUDITOR", "EDUCATION_LEVELS", "GENDERS", "ORGANIZATION_KINDS",
           "PERSON_DEFAULTS", "SYSTEM_ROLES", "TICK_ACTOR", "person_fields"]


def person_fields(full_name: str, birth_date: date, **fields: Any) -> dict[str, Any]:
    """A person's record checked for registration: names cleaned, no birth in the future."""
    if birth_date > today():
        raise BadInput(_("birth date {birth_date} is in the future").format(
                           birth_date=format_date(birth_date)))
    for key in ("ethnicity", "religion"):
        fields[key] = clean_text(fields[key], key, 100)
    return {"full_name": clean_text(full_name, "name", 300), "birth_date": birth_date, **fields}
