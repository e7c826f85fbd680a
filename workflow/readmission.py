"""Readmission (kết nạp lại): a new case for someone whose membership ended, under rules
the definition states — how long after leaving, how many times, which endings bar it for
good, and what written consent must be on file.

The rules are checked when the case is opened, against a snapshot of the earlier
membership that is stored with the opening event, so an auditor's replay checks them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from memberflow.i18n import _
from memberflow.workflow.dates import add_months, format_date
from memberflow.workflow.definition import Labels, State
from memberflow.workflow.yaml_source import LineDict

if TYPE_CHECKING:
    from memberflow.workflow.loader import _Checker

READMISSION_KEYS = {"labels", "ended_in", "ended_on", "ground_input", "wait_months", "once_only",
                    "documents", "record_cleared_wait_months", "exceptions", "barred"}
BAR_KEYS = {"labels", "earlier_state", "earlier_ground", "unless"}
EXCEPTION_KEYS = {"labels"}
READMISSION_FACT = "readmission_of"
MAX_MONTHS = 1200
# What a section without ``ended_on`` / ``ground_input`` means: versions published before these
# keys existed were read this way by the code (the end dated by removal_date, else by the day
# the ending state was entered; the ground taken from the ending move's input ``ground``).
DEFAULT_ENDED_ON = "removal_date"
DEFAULT_GROUND_INPUT = "ground"


@dataclass(frozen=True)
class Bar:
    """A category never readmitted: found from the earlier ending (its state or removal
    ground) or, when it names neither, declared by the officer from the dossier."""

    name: str
    labels: Labels
    earlier_state: str | None = None
    earlier_ground: str | None = None
    unless: str | None = None  # an exception the officer may state (e.g. family hardship)

    @property
    def declared(self) -> bool:
        return self.earlier_state is None and self.earlier_ground is None


@dataclass(frozen=True)
class Claim:
    """What the officer states when opening a readmission, recorded with the opening event."""

    declared: frozenset[str] = frozenset()
    exceptions: frozenset[str] = frozenset()
    record_cleared_on: date | None = None
    documents: Mapping[str, str] | None = None

    def as_payload(self) -> dict[str, Any]:
        return {"declared": sorted(self.declared), "exceptions": sorted(self.exceptions),
                "record_cleared_on": self.record_cleared_on.isoformat()
                if self.record_cleared_on else None}

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], documents: Mapping[str, str]) -> Claim:
        cleared = payload.get("record_cleared_on")
        return cls(frozenset(payload.get("declared", ())), frozenset(payload.get("exceptions", ())),
                   date.fromisoformat(cleared) if cleared else None, documents)


@dataclass(frozen=True)
class ReadmissionRules:
    labels: Labels
    ended_in: tuple[str, ...]
    wait_months: int
    once_only: bool
    documents: tuple[str, ...]
    record_cleared_wait_months: int
    exceptions: Mapping[str, Labels]
    bars: tuple[Bar, ...]
    # The fact dating the end of the earlier membership (the day the ending state was entered
    # when the case has no such fact), and the ending move's input naming why.
    ended_on: str = DEFAULT_ENDED_ON
    ground_input: str = DEFAULT_GROUND_INPUT

    def unknown_names(self, claim: Claim) -> str | None:
        """A declared category or exception the definition does not know (bad input)."""
        known = {b.name for b in self.bars if b.declared}
        for name in sorted(claim.declared - known):
            return _("unknown barred category {name!r}; declared categories: {names}").format(
                       name=name, names=', '.join(sorted(known)))
        for name in sorted(claim.exceptions - set(self.exceptions)):
            return _("unknown exception {name!r}; exceptions: {exceptions}").format(
                       name=name, exceptions=', '.join(self.exceptions) or _('none'))
        return None

    def failures(self, earlier: Mapping[str, Any], claim: Claim, on: date,
                 states: Mapping[str, State]) -> list[str]:
        """Every rule the readmission breaks; ``earlier`` is the stored snapshot."""
        found = []
        ended, state = date.fromisoformat(earlier["ended_on"]), earlier["ended_in"]
        if state not in self.ended_in:
            label = states[state].labels.en if state in states else state
            found.append(_("case {case_id} ended in {state} ({label}); readmission follows only "
                           "{ended_in}").format(case_id=earlier['case_id'], state=state, label=label,
                             ended_in=', '.join(self.ended_in)))
        if self.once_only and earlier.get("readmissions"):
            found.append(_("readmission is allowed once only: case {case_id} was already a "
                           "readmission").format(case_id=earlier['readmissions'][0]))
        if on < add_months(ended, self.wait_months):
            found.append(_("membership ended on {ended}; readmission needs {wait_months} months, so not "
                           "before {add_months}").format(
                             ended=format_date(ended), wait_months=self.wait_months,
                             add_months=format_date(add_months(ended, self.wait_months))))
        cleared = claim.record_cleared_on
        if cleared and on < add_months(cleared, self.record_cleared_wait_months):
            found.append(_("criminal record cleared on {cleared}; readmission needs "
                           "{record_cleared_wait_months} months after it").format(
                             cleared=format_date(cleared),
                             record_cleared_wait_months=self.record_cleared_wait_months))
        found += [_("barred from readmission: {en} ({vi})").format(en=bar.labels.en, vi=bar.labels.vi)
                  for bar in self.bars if _applies(bar, earlier, claim)]
        attached = claim.documents or {}
        found += [_("document {code} must be attached with this readmission").format(code=code)
                  for code in self.documents if code not in attached]
        return found


def _applies(bar: Bar, earlier: Mapping[str, Any], claim: Claim) -> bool:
    if bar.unless and bar.unless in claim.exceptions:
        return False
    if bar.declared:
        return bar.name in claim.declared
    return (bar.earlier_state is None or earlier["ended_in"] == bar.earlier_state) and \
        (bar.earlier_ground is None or earlier.get("ground") == bar.earlier_ground)


def parse_readmission(top: LineDict, check: _Checker, states: Mapping[str, State],
                      documents: Mapping[str, Labels]) -> ReadmissionRules | None:
    """The optional ``readmission`` section; problems go to ``check`` with their lines."""
    block = check.section(top, "readmission", READMISSION_KEYS)
    if block is None:
        return None
    ended_in = check.references(block, "ended_in", "readmission", states,
                                _("has no ended_in (how an earlier membership ended)"),
                                _("ended_in names unknown state"))
    codes = check.references(block, "documents", "readmission", documents, None,
                             _("requires unknown document"))
    exceptions = _exceptions(block, check)
    return ReadmissionRules(
        labels=check.labels(block, "labels", "readmission"),
        ended_in=ended_in,
        wait_months=_months(block, "wait_months", check),
        once_only=_flag(block, "once_only", check),
        documents=codes,
        record_cleared_wait_months=_months(block, "record_cleared_wait_months", check),
        exceptions=exceptions,
        bars=_bars(block, check, states, exceptions),
        ended_on=check.text(block, "ended_on", "readmission", required=False) or DEFAULT_ENDED_ON,
        ground_input=check.text(block, "ground_input", "readmission", required=False)
        or DEFAULT_GROUND_INPUT,
    )


def _months(block: LineDict, key: str, check: _Checker) -> int:
    value = block.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MONTHS:
        check.add(block.line_of(key), _("readmission: {key} must be a whole number of months from 0 to "
                                        "{max_months}").format(key=key, max_months=MAX_MONTHS))
        return 0
    return value


def _flag(block: LineDict, key: str, check: _Checker) -> bool:
    value = block.get(key, False)
    if not isinstance(value, bool):
        check.add(block.line_of(key), _("readmission: {key} must be true or false").format(key=key))
    return value is True


def _exceptions(block: LineDict, check: _Checker) -> dict[str, Labels]:
    spec = check.mapping(block.get("exceptions", LineDict()), block.line_of("exceptions"),
                         _("readmission exceptions"))
    found = {}
    for name in spec or {}:
        entry = check.mapping(spec[name], spec.line_of(name), _("exception {name!r}").format(name=name))
        if entry is not None:
            check.unknown_keys(entry, EXCEPTION_KEYS, _("exception {name!r}").format(name=name))
            found[str(name)] = check.labels(entry, "labels", _("exception {name!r}").format(name=name))
    return found


def _bars(block: LineDict, check: _Checker, states: Mapping[str, State],
          exceptions: Mapping[str, Labels]) -> tuple[Bar, ...]:
    spec = check.mapping(block.get("barred", LineDict()), block.line_of("barred"), _("readmission barred"))
    bars = []
    for name in spec or {}:
        what = _("barred category {name!r}").format(name=name)
        entry = check.mapping(spec[name], spec.line_of(name), what)
        if entry is None:
            continue
        check.unknown_keys(entry, BAR_KEYS, what)
        state, unless = entry.get("earlier_state"), entry.get("unless")
        if state is not None and state not in states:
            check.add(entry.line_of("earlier_state"), _("{what}: unknown state {state!r}").format(
                                                          what=what, state=state))
        if unless is not None and unless not in exceptions:
            check.add(entry.line_of("unless"), _("{what}: unknown exception {unless!r}").format(
                                                   what=what, unless=unless))
        ground = entry.get("earlier_ground")
        bars.append(Bar(str(name), check.labels(entry, "labels", what),
                        str(state) if state is not None else None,
                        str(ground) if ground is not None else None,
                        str(unless) if unless is not None else None))
    return tuple(bars)


def opening_facts(earlier: Mapping[str, Any], documents: Mapping[str, str]) -> dict[str, Any]:
    """Facts a readmission case starts with besides the usual ones: the link to the earlier
    case and the documents filed with the opening (the same for the service and for replay)."""
    from memberflow.workflow.engine import DOCUMENTS_FACT

    facts: dict[str, Any] = {READMISSION_FACT: earlier["case_id"]}
    if documents:
        facts[DOCUMENTS_FACT] = sorted(documents)
    return facts
