"""Which of a person's fields are sensitive, and which roles see them: the definition's rule.

Ethnicity and religion are kept for the dossier (lý lịch) and the bloc's statistics, but a
branch officer looking a person up has no need of them. A definition's ``personal_data``
section names the sensitive fields and the roles (``auditor`` included) shown them; a
version without the section, as every version before it was, shows them to auditors only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from memberflow.i18n import _
from memberflow.workflow.definition import Labels

if TYPE_CHECKING:
    from memberflow.workflow.loader import _Checker
    from memberflow.workflow.yaml_source import LineDict

PERSONAL_DATA_KEYS = {"sensitive", "shown_to"}
# The fields of a person's record a definition may mark sensitive.
PERSON_FIELDS = ("ethnicity", "religion", "education", "youth_union", "trade_union", "gender",
                 "birth_date")
AUDITOR = "auditor"


@dataclass(frozen=True)
class PersonalData:
    sensitive: tuple[str, ...] = ("ethnicity", "religion")
    shown_to: tuple[str, ...] = (AUDITOR,)


DEFAULT = PersonalData()


def parse_personal_data(top: LineDict, check: _Checker, roles: Mapping[str, Labels]) -> PersonalData:
    """The optional ``personal_data`` section; problems go to ``check`` with their lines."""
    block = check.section(top, "personal_data", PERSONAL_DATA_KEYS)
    if block is None:
        return DEFAULT
    fields = check.references(block, "sensitive", "personal_data", dict.fromkeys(PERSON_FIELDS),
                              _("has no sensitive (the fields it protects)"),
                              _("sensitive names unknown person field"))
    shown_to = check.references(block, "shown_to", "personal_data", {**roles, AUDITOR: None},
                                _("has no shown_to (the roles that see those fields)"),
                                _("shown_to names unknown role"))
    return PersonalData(fields, shown_to)
