"""The fixed registry of guards a definition may choose and parameterize.

A definition names a guard and gives its parameters; it can never name code. Each guard
returns the rules it found broken, in plain words, so an officer learns *which* rule
blocked a move and by how much.

A guard name, once published, is never removed or renamed away: stored definition versions
name it forever, and cases pinned to them must load, move and replay. A guard whose meaning
is replaced stays registered with its old meaning and says what new definitions use instead
(``superseded_by``); a rename registers the old name too. tests/fixtures/definition_names.yaml
lists every name ever accepted, and a test holds the registry to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from functools import lru_cache
from typing import Any

from memberflow.i18n import N_, _
from memberflow.workflow.dates import add_months, describe_months, format_date, whole_months_between

EDUCATION_LEVELS = (
    "primary",
    "lower_secondary",
    "upper_secondary",
    "vocational",
    "college",
    "university",
    "postgraduate",
)
ORGANIZATION_INTRODUCERS = ("youth_union", "trade_union")


@dataclass(slots=True)
class GuardContext:
    """What a guard may look at: this move's inputs, facts recorded earlier, and evidence.

    Evidence is the snapshot of people data (applicant, introducers) taken when the move
    was made; it is stored with the audit event so the same check can be replayed later.
    ``documents`` are all on file (earlier moves and this one); ``attached`` only this move's.
    """

    business_date: date
    inputs: Mapping[str, Any]
    facts: Mapping[str, Any]
    evidence: Mapping[str, Any]
    documents: frozenset[str] = field(default_factory=frozenset)
    attached: frozenset[str] = field(default_factory=frozenset)

    def value(self, name: str) -> Any:
        return self.inputs[name] if name in self.inputs else self.facts.get(name)

    def date_value(self, name: str) -> date | None:
        raw = self.value(name)
        if raw is None or isinstance(raw, date):
            return raw
        return date.fromisoformat(str(raw))


Check = Callable[[GuardContext, Mapping[str, Any]], list[str]]


@dataclass(frozen=True)
class Param:
    """One guard parameter: ``kind`` says what YAML value it takes and what it refers to."""

    kind: str  # int | ratio | text | input | date_ref | date_refs | document | education
    required: bool = True
    minimum: int | None = None
    input_types: tuple[str, ...] = ()  # for kind "input": the input types the guard can read
    may_be_unrecorded: bool = False  # a date the guard reads as "not yet", so lint lets it be
    # For kind "input", what any real value obeys (see ``possible``): a least value, and the
    # parameter naming the input it cannot exceed.
    input_at_least: int | None = None
    input_at_most: str | None = None


@dataclass(frozen=True)
class GuardType:
    name: str
    summary: str
    params: Mapping[str, Param]
    check: Check
    # Set on a guard kept only for the stored versions that use it: what to write instead.
    superseded_by: str | None = None


REGISTRY: dict[str, GuardType] = {}


def _guard(name: str, summary: str, superseded_by: str | None = None,
           **params: Param) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        REGISTRY[name] = GuardType(name, summary, params, check, superseded_by)
        return check

    return register


def current_guards() -> list[str]:
    """The guards a new definition should choose from (superseded ones load, but are not offered)."""
    return sorted(name for name, guard in REGISTRY.items() if guard.superseded_by is None)


@lru_cache(maxsize=256)
def parse_ratio(value: Any) -> Fraction | None:
    """Ratios are written as ``2/3`` or ``0.5`` in YAML; anything else is rejected."""
    if isinstance(value, bool):
        return None
    try:
        ratio = Fraction(str(value).replace(" ", ""))
    except (ValueError, ZeroDivisionError):
        return None
    return ratio if 0 < ratio <= 1 else None


def _applicant_birth(ctx: GuardContext) -> date | None:
    raw = ctx.evidence.get("applicant", {}).get("birth_date")
    return date.fromisoformat(raw) if raw else None


@_guard(
    "age_between",
    "applicant's age in whole months on the move's date lies between the bounds",
    min_years=Param("int", minimum=0),
    max_years=Param("int", minimum=1),
    consent_document=Param("document", required=False),
)
def _age_between(ctx: GuardContext, p: Mapping[str, Any]) -> list[str]:
    birth = _applicant_birth(ctx)
    if birth is None:
        return [_("applicant's birth date is not recorded")]
    months = whole_months_between(birth, ctx.business_date)
    age = _("applicant is {months} old on {business_date}").format(
              months=describe_months(months), business_date=format_date(ctx.business_date))
    if months < p["min_years"] * 12:
        return [_("{age}; must be at least {min_years}").format(age=age, min_years=p['min_years'])]
    consent = p.get("consent_document")
    if months > p["max_years"] * 12 and not (consent and consent in ctx.documents):
        needs = _(" unless document {consent} (written consent) is attached").format(
                    consent=consent) if consent else ""
        return [_("{age}; must be at most {max_years}{needs}").format(
                    age=age, max_years=p['max_years'], needs=needs)]
    return []


@_guard(
    "certificate_valid",
    "the training certificate is at most max_age_months old on the move's date",
    date=Param("date_ref"),
    max_age_months=Param("int", minimum=1),
)
def _certificate_valid(ctx: GuardContext, p: Mapping[str, Any]) -> list[str]:
    issued = ctx.date_value(p["date"])
    if issued is None:
        return [_("no training certificate date ({date}) is recorded").format(date=p['date'])]
    if issued > ctx.business_date:
        return [_("training certificate is dated {issued}, after the move's date").format(
                    issued=format_date(issued))]
    expires = add_months(issued, p["max_age_months"])
    if ctx.business_date > expires:
        age = describe_months(whole_months_between(issued, ctx.business_date))
        return [
            _("training certificate of {issued} is {age} old on {business_date}; it is valid for "
              "{max_age_months} months (expired {expires}) — the course must be retaken").format(
                issued=format_date(issued), age=age, business_date=format_date(ctx.business_date),
                max_age_months=p['max_age_months'], expires=format_date(expires))
        ]
    return []


@_guard(
    "introducers",
    "enough official-member introducers who have known the applicant long enough",
    input=Param("input", input_types=("introducers",)),
    organization_input=Param("input", required=False, input_types=("choice",)),
    required=Param("int", minimum=1),
    min_months_together=Param("int", minimum=0),
)
def _introducers(ctx: GuardContext, p: Mapping[str, Any]) -> list[str]:
    given = ctx.value(p["input"]) or []
    known = ctx.evidence.get("people", {})
    applicant_id = ctx.evidence.get("applicant", {}).get("person_id")
    failures: list[str] = []
    valid: set[int] = set()
    for entry in given:
        person = known.get(str(entry["person_id"]), {})
        who = _("introducer {person} (#{person_id})").format(
                  person=person.get('full_name', '?'), person_id=entry['person_id'])
        if entry["person_id"] == applicant_id:
            failures.append(_("{who} is the applicant").format(who=who))
        elif entry["person_id"] in valid:
            failures.append(_("{who} is named twice").format(who=who))
        elif not _official_on(person, ctx.business_date):
            failures.append(_("{who} is not an official member on {business_date}").format(
                                who=who, business_date=format_date(ctx.business_date)))
        elif entry["months"] < p["min_months_together"]:
            failures.append(
                _("{who} has worked or lived with the applicant for {months} months; at least "
                  "{min_months_together} required").format(
                    who=who, months=entry['months'], min_months_together=p['min_months_together'])
            )
        else:
            valid.add(entry["person_id"])
    organization = ctx.value(p["organization_input"]) if p.get("organization_input") else None
    applicant = ctx.evidence.get("applicant", {})
    if organization and not applicant.get(organization):
        union = _("Youth Union") if organization == "youth_union" else _("trade union")
        failures.append(_("the {union} may introduce only an applicant who is a member of it").format(
                            union=union))
        organization = None
    needed = p["required"] - (1 if organization else 0)
    if len(valid) < needed:
        by_org = _(" besides the {organization}").format(
                     organization=organization.replace('_', ' ')) if organization else ""
        failures.append(
            _("{needed} qualifying official-member introducer(s) needed{by_org}; {count} given").format(
                needed=needed, by_org=by_org, count=len(valid))
        )
    return failures


def _official_on(person: Mapping[str, Any], day: date) -> bool:
    since = person.get("official_since")
    return bool(person.get("official")) and (since is None or date.fromisoformat(since) <= day)


@_guard(
    "official_member",
    "the person named by an input is an official member on the move's date",
    input=Param("input", input_types=("person",)),
)
def _official_member(ctx: GuardContext, p: Mapping[str, Any]) -> list[str]:
    person_id = ctx.value(p["input"])
    if person_id is None:
        return []
    person = ctx.evidence.get("people", {}).get(str(person_id), {})
    if _official_on(person, ctx.business_date):
        return []
    who = f"{person.get('full_name', '?')} (#{person_id})"
    return [_("{input} {who} is not an official member on {business_date}").format(
                input=p['input'], who=who, business_date=format_date(ctx.business_date))]


def _votes(ctx: GuardContext, p: Mapping[str, Any]) -> tuple[int, int, str | None]:
    votes_for, eligible = ctx.value(p["votes_for"]), ctx.value(p["votes_eligible"])
    body = p["body"]
    if votes_for is None or eligible is None:
        return 0, 0, _("{body} vote is not recorded ({votes_for}, {votes_eligible})").format(
                         body=body, votes_for=p['votes_for'], votes_eligible=p['votes_eligible'])
    if eligible <= 0:
        return 0, 0, _("{body} vote: eligible voters must be at least 1").format(body=body)
    if votes_for > eligible:
        return 0, 0, _("{body} vote: {votes_for} votes for but only {eligible} eligible voters").format(
                         body=body, votes_for=votes_for, eligible=eligible)
    return votes_for, eligible, None


def _vote_failures(ctx: GuardContext, p: Mapping[str, Any], word: str,
                   needed: Callable[[Fraction, int], int]) -> list[str]:
    votes_for, eligible, problem = _votes(ctx, p)
    if problem:
        return [problem]
    ratio = parse_ratio(p["ratio"])
    least = needed(ratio, eligible)
    if votes_for < least:
        return [_("{body} vote: {votes_for} of {eligible} eligible is not {word} {ratio} (at least {least} "
                  "needed)").format(
                    body=p['body'], votes_for=votes_for, eligible=eligible, word=word, ratio=ratio,
                    least=least)]
    return []


# No one votes for more than are eligible, and a vote has someone eligible: a new move breaking
# either is bad input (``possible``); ``_votes`` still refuses it, for records replayed.
VOTE_PARAMS = {"votes_for": Param("input", input_types=("count",), input_at_most="votes_eligible"),
               "votes_eligible": Param("input", input_types=("count",), input_at_least=1),
               "ratio": Param("ratio"), "body": Param("text")}


@_guard("vote_ratio_at_least", "votes for / eligible voters is at least the ratio", **VOTE_PARAMS)
def _vote_ratio_at_least(ctx: GuardContext, p: Mapping[str, Any]) -> list[str]:
    return _vote_failures(ctx, p, _("at least"),
                          lambda ratio, n: -(-ratio.numerator * n // ratio.denominator))


@_guard("vote_ratio_below", "votes for / eligible voters is below the ratio (a failed vote)",
        **VOTE_PARAMS)
def _vote_ratio_below(ctx: GuardContext, p: Mapping[str, Any]) -> list[str]:
    votes_for, eligible, problem = _votes(ctx, p)
    if problem:
        return [problem]
    ratio = parse_ratio(p["ratio"])
    if votes_for >= -(-ratio.numerator * eligible // ratio.denominator):
        return [_("{body} vote: {votes_for} of {eligible} eligible reaches {ratio}; record it as a passed "
                  "vote").format(body=p['body'], votes_for=votes_for, eligible=eligible, ratio=ratio)]
    return []


@_guard("vote_ratio_above", "votes for / eligible voters is strictly more than the ratio",
        **VOTE_PARAMS)
def _vote_ratio_above(ctx: GuardContext, p: Mapping[str, Any]) -> list[str]:
    return _vote_failures(ctx, p, _("more than"),
                          lambda ratio, n: ratio.numerator * n // ratio.denominator + 1)


@_guard(
    "months_elapsed",
    "at least `months` calendar months lie between a recorded date and `until` "
    "(default: the move's date)",
    since=Param("date_ref"),
    months=Param("int", minimum=1),
    until=Param("date_ref", required=False),
)
def _months_elapsed(ctx: GuardContext, p: Mapping[str, Any]) -> list[str]:
    start = ctx.date_value(p["since"])
    if start is None:
        return [_("{since} is not recorded").format(since=p['since'])]
    end_name = p.get("until", "business_date")
    end = ctx.business_date if end_name == "business_date" else ctx.date_value(end_name)
    if end is None:
        return [_("{end_name} is not recorded").format(end_name=end_name)]
    earliest = add_months(start, p["months"])
    if end < earliest:
        elapsed = describe_months(max(0, whole_months_between(start, end)))
        until = "" if end_name == "business_date" else _(" to {end_name} {end}").format(
                                                           end_name=end_name, end=format_date(end))
        return [
            _("only {elapsed} since {since} {start}{until}; {months} months must pass (not before "
              "{earliest})").format(
                elapsed=elapsed, since=p['since'], start=format_date(start), until=until, months=p['months'],
                earliest=format_date(earliest))
        ]
    return []


@_guard(
    "education_at_least",
    "applicant's recorded education is at least the level",
    level=Param("education"),
)
def _education_at_least(ctx: GuardContext, p: Mapping[str, Any]) -> list[str]:
    level = ctx.evidence.get("applicant", {}).get("education")
    if level not in EDUCATION_LEVELS:
        return [_("applicant's education is not recorded; at least {level} required").format(
                    level=p['level'])]
    if EDUCATION_LEVELS.index(level) < EDUCATION_LEVELS.index(p["level"]):
        return [_("applicant's education is {level}; at least {level2} required").format(
                    level=level, level2=p['level'])]
    return []


@_guard(
    "not_in_violation",
    "the member is not under disciplinary review (a yes/no input of the move)",
    input=Param("input", input_types=("bool",)),
)
def _not_in_violation(ctx: GuardContext, p: Mapping[str, Any]) -> list[str]:
    if ctx.value(p["input"]):
        return [_("the member is under disciplinary review; discipline must be settled first")]
    return []


@_guard(
    "dates_in_order",
    "the named dates are in order, earliest first (business_date is the move's date)",
    dates=Param("date_refs"),
)
def _dates_in_order(ctx: GuardContext, p: Mapping[str, Any]) -> list[str]:
    known = [(name, ctx.business_date if name == "business_date" else ctx.date_value(name))
             for name in p["dates"]]
    present = [(name, day) for name, day in known if day is not None]
    return [
        _("{later} {late} is before {earlier} {early}").format(
            later=later, late=format_date(late), earlier=earlier, early=format_date(early))
        for (earlier, early), (later, late) in zip(present, present[1:], strict=False)
        if late < early
    ]


@_guard(
    "recorded",
    "the date is recorded on the case: a step one move opened and no move has cleared",
    fact=Param("date_ref"),
)
def _recorded(ctx: GuardContext, p: Mapping[str, Any]) -> list[str]:
    return [] if ctx.facts.get(p["fact"]) is not None else [_("no {fact} is recorded on this case").format(
                                                                fact=p['fact'])]


@_guard(
    "not_recorded",
    "the date is not recorded on the case (e.g. no proposal is open already)",
    fact=Param("date_ref", may_be_unrecorded=True),
)
def _not_recorded(ctx: GuardContext, p: Mapping[str, Any]) -> list[str]:
    day = ctx.date_value(p["fact"])
    return [] if day is None else [_("{fact} {day} is already recorded on this case").format(
                                       fact=p['fact'], day=format_date(day))]


def is_pending(facts: Mapping[str, Any], opened: str, closed: str) -> bool:
    """The ``pending`` guard's test: the opening date is recorded and later than any closing
    date (so a re-opening on the day of a closing does not count as open)."""
    start, end = facts.get(opened), facts.get(closed)
    return start is not None and (end is None or str(start) > str(end))


@_guard(
    "pending",
    "a step opened by one move (its recorded date) has not been closed by another since",
    superseded_by=N_("recorded: {fact: OPENED} on the closing move, which clears: [OPENED] "
                     "(and not_recorded: {fact: OPENED} on the opening move)"),
    opened=Param("date_ref"),
    closed=Param("date_ref", may_be_unrecorded=True),
)
def _pending(ctx: GuardContext, p: Mapping[str, Any]) -> list[str]:
    """Published in d884598 and replaced in bf5c405 by ``recorded``/``not_recorded`` with
    ``clears:``; kept word for word for the versions (and their cases) that use it."""
    if is_pending(ctx.facts, p["opened"], p["closed"]):
        return []
    if ctx.facts.get(p["opened"]) is None:
        return [_("nothing to close: no {opened} is recorded on this case").format(opened=p['opened'])]
    return [_("nothing to close: {opened} was already closed by {closed} {day}").format(
                opened=p['opened'], closed=p['closed'],
                day=format_date(date.fromisoformat(str(ctx.facts[p['closed']]))))]
