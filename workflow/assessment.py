"""Annual quality ratings and the screening that feeds removal (đánh giá, xếp loại; rà soát).

The rating bands (Quy định 366, 100-point scale), the screening criteria and the removal
ground each criterion leads to are definition data, because the Party revises them; this
module only reads them and applies them to the yearly records of one member.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from memberflow.i18n import _
from memberflow.workflow.definition import Labels, Transition
from memberflow.workflow.yaml_source import LineDict

if TYPE_CHECKING:
    from memberflow.workflow.loader import _Checker

# What a yearly record holds besides the score: months in the year, 0 to 12.
MONTH_FIELDS = ("absence_months", "unpaid_dues_months", "no_progress_months")
MONTH_FIELD_LABELS = {
    "absence_months": Labels("không sinh hoạt đảng", "absent from party activities"),
    "unpaid_dues_months": Labels("không đóng đảng phí", "party dues unpaid"),
    "no_progress_months": Labels("giáo dục không tiến bộ", "educated without progress"),
}
ASSESSMENT_KEYS = {"recorded_by", "ratings", "screening"}
SCREENING_KEYS = {"proposes", "criteria"}
CRITERION_KEYS = {"labels", "ground", "stages", "rating", "months"}
RATING_KEYS = {"min_score", "labels"}
RATING_RULE_KEYS = ("is", "years")  # a criterion's rating: {is: RATING, years: N}
MONTHS_RULE_KEYS = ("field", "at_least")  # a criterion's months: {field: FIELD, at_least: N}
MAX_SCORE = 100


@dataclass(frozen=True)
class Rating:
    name: str
    labels: Labels
    min_score: int


@dataclass(frozen=True)
class Criterion:
    """One reason to list a member: ``years`` running with a rating, or enough months of
    absence, unpaid dues or no progress in the year screened."""

    name: str
    labels: Labels
    ground: str  # the removal ground the proposal names
    stages: tuple[str, ...] = ()  # empty: members in any stage
    rating: str | None = None
    years: int = 0
    field: str | None = None
    months: int = 0


@dataclass(frozen=True)
class Finding:
    criterion: Criterion
    reason: Labels


@dataclass(frozen=True)
class AssessmentRules:
    recorded_by: tuple[str, ...]
    ratings: tuple[Rating, ...]  # highest band first
    proposes: str  # the move ``screen --open`` makes on each member listed
    criteria: tuple[Criterion, ...]

    def rating(self, name: str) -> Rating | None:
        return next((r for r in self.ratings if r.name == name), None)

    def band(self, score: int) -> Rating:
        """The highest band the score reaches (the lowest band starts at 0)."""
        return next(r for r in self.ratings if score >= r.min_score)

    def rating_problem(self, score: int, name: str | None) -> str | None:
        """A rating may be lower than the score's band (excellent needs more than points),
        never higher."""
        if not 0 <= score <= MAX_SCORE:
            return _("score {score} is outside 0–{max_score}").format(score=score, max_score=MAX_SCORE)
        if name is None:
            return None
        chosen = self.rating(name)
        if chosen is None:
            return _("unknown rating {name!r}; ratings: {names}").format(
                       name=name, names=', '.join(r.name for r in self.ratings))
        band = self.band(score)
        if chosen.min_score > band.min_score:
            return _("rating {name} needs a score of at least {min_score}; {score} is {name2}").format(
                       name=name, min_score=chosen.min_score, score=score, name2=band.name)
        return None

    def findings(self, year: int, stage: str,
                 records: Mapping[int, Mapping[str, Any]]) -> list[Finding]:
        """Every criterion a member meets in ``year``, given their records by year."""
        found = []
        for criterion in self.criteria:
            if criterion.stages and stage not in criterion.stages:
                continue
            reason = _rating_reason(criterion, self.rating(criterion.rating), year, records) \
                if criterion.rating else _months_reason(criterion, records.get(year))
            if reason:
                found.append(Finding(criterion, reason))
        return found


def _rating_reason(criterion: Criterion, rating: Rating | None, year: int,
                   records: Mapping[int, Mapping[str, Any]]) -> Labels | None:
    years = list(range(year - criterion.years + 1, year + 1))
    if rating is None or not all(records.get(y, {}).get("rating") == rating.name for y in years):
        return None
    listed = ", ".join(str(y) for y in years)
    return Labels(f"xếp loại {rating.labels.vi} năm {listed}",
                  f"rated {rating.labels.en.lower()} in {listed}")


def _months_reason(criterion: Criterion, record: Mapping[str, Any] | None) -> Labels | None:
    value = int((record or {}).get(criterion.field or "", 0) or 0)
    if record is None or value < criterion.months:
        return None
    what = MONTH_FIELD_LABELS[criterion.field or ""]
    return Labels(f"{what.vi} {value} tháng trong năm (từ {criterion.months} tháng)",
                  f"{what.en} {value} months in the year (at least {criterion.months})")


def parse_assessment(top: LineDict, check: _Checker, roles: Mapping[str, Labels],
                     transitions: list[Transition], stages: tuple[str, ...]) -> AssessmentRules | None:
    """The optional ``assessment`` section; problems go to ``check`` with their lines."""
    block = check.section(top, "assessment", ASSESSMENT_KEYS)
    if block is None:
        return None
    recorded_by = check.references(block, "recorded_by", "assessment", roles,
                                   _("has no recorded_by (roles that record ratings)"),
                                   _("recorded_by names unknown role"))
    ratings = _ratings(block, check)
    screening = check.mapping(block.get("screening"), block.line_of("screening"), _("assessment screening"))
    proposes, criteria = "", ()
    if screening is not None:
        check.unknown_keys(screening, SCREENING_KEYS, _("assessment screening"))
        proposes = _proposing_move(screening, check, transitions)
        criteria = _criteria(screening, check, {r.name for r in ratings}, stages,
                             _grounds(transitions, proposes))
    return AssessmentRules(recorded_by, ratings, proposes, criteria)


def _ratings(block: LineDict, check: _Checker) -> tuple[Rating, ...]:
    spec = check.mapping(block.get("ratings"), block.line_of("ratings"), _("assessment ratings"))
    ratings = []
    for name in spec or {}:
        entry = check.mapping(spec[name], spec.line_of(name), _("rating {name!r}").format(name=name))
        if entry is None:
            continue
        check.unknown_keys(entry, RATING_KEYS, _("rating {name!r}").format(name=name))
        low = entry.get("min_score")
        if isinstance(low, bool) or not isinstance(low, int) or not 0 <= low <= MAX_SCORE:
            check.add(entry.line_of("min_score"), _("rating {name!r}: min_score must be a whole number "
                                                    "from 0 to {max_score}").format(
                                                      name=name, max_score=MAX_SCORE))
            low = 0
        ratings.append(Rating(str(name), check.labels(entry, "labels", _("rating {name!r}").format(
                                                                           name=name)), low))
    ordered = tuple(sorted(ratings, key=lambda r: -r.min_score))
    if spec is not None and (not ordered or ordered[-1].min_score != 0):
        check.add(block.line_of("ratings"), _("assessment ratings need a band starting at min_score 0, so "
                                              "every score has a rating"))
    return ordered


def _proposing_move(screening: LineDict, check: _Checker, transitions: list[Transition]) -> str:
    name = screening.get("proposes")
    move = next((t for t in transitions if t.trigger == name), None)
    if move is None:
        check.add(screening.line_of("proposes"), _("screening proposes unknown move {name!r}").format(
                                                     name=name))
        return ""
    kinds = {spec.name: spec.type for spec in move.inputs}
    if kinds.get("ground") != "choice" or kinds.get("reason") != "text":
        check.add(screening.line_of("proposes"), _("screening proposes {name!r}, which must take a choice "
                                                   "input 'ground' and a text input 'reason'").format(
                                                     name=name))
    return str(name)


def _grounds(transitions: list[Transition], proposes: str) -> frozenset[str]:
    move = next((t for t in transitions if t.trigger == proposes), None)
    spec = move.input_specs.get("ground") if move else None
    return frozenset(spec.choices) if spec else frozenset()


def _criteria(screening: LineDict, check: _Checker, ratings: set[str], stages: tuple[str, ...],
              grounds: frozenset[str]) -> tuple[Criterion, ...]:
    spec = check.mapping(screening.get("criteria"), screening.line_of("criteria"), _("screening criteria"))
    found = []
    for name in spec or {}:
        entry = check.mapping(spec[name], spec.line_of(name), _("criterion {name!r}").format(name=name))
        if entry is not None:
            found.append(_criterion(str(name), entry, check, ratings, stages, grounds))
    return tuple(found)


def _criterion(name: str, entry: LineDict, check: _Checker, ratings: set[str],
               stages: tuple[str, ...], grounds: frozenset[str]) -> Criterion:
    what = _("criterion {name!r}").format(name=name)
    check.unknown_keys(entry, CRITERION_KEYS, what)
    ground = entry.get("ground")
    if grounds and ground not in grounds:
        check.add(entry.line_of("ground"), _("{what}: ground {ground!r} is not a choice of the proposing "
                                             "move ({names})").format(
                                               what=what, ground=ground, names=', '.join(sorted(grounds))))
    named_stages = check.references(entry, "stages", what, dict.fromkeys(stages), None,
                                    _("names unknown stage"))
    base = Criterion(name, check.labels(entry, "labels", what), str(ground), named_stages)
    if ("rating" in entry) == ("months" in entry):
        check.add(entry.line, _("{what} needs exactly one of rating or months").format(what=what))
        return base
    if "rating" in entry:
        rating, years = _pair(entry, "rating", RATING_RULE_KEYS, check, what)
        if rating not in ratings:
            check.add(entry.line_of("rating"), _("{what}: unknown rating {rating!r}").format(
                                                   what=what, rating=rating))
        if not _count(years, 1, 10):
            check.add(entry.line_of("rating"), _("{what}: years must be a whole number from 1 to 10").format(
                                                   what=what))
        return replace(base, rating=str(rating), years=_count(years, 1, 10))
    field, months = _pair(entry, "months", MONTHS_RULE_KEYS, check, what)
    if field not in MONTH_FIELDS:
        check.add(entry.line_of("months"), _("{what}: months field must be one of {month_fields}").format(
                                               what=what, month_fields=', '.join(MONTH_FIELDS)))
    if not _count(months, 1, 12):
        check.add(entry.line_of("months"), _("{what}: at_least must be a whole number of months from 1 to "
                                             "12").format(what=what))
    return replace(base, field=str(field), months=_count(months, 1, 12))


def _pair(entry: LineDict, key: str, names: tuple[str, str], check: _Checker,
          what: str) -> tuple[Any, Any]:
    block = check.mapping(entry.get(key), entry.line_of(key), f"{what} {key}")
    if block is None:
        return None, None
    check.unknown_keys(block, set(names), f"{what} {key}")
    return block.get(names[0]), block.get(names[1])


def _count(value: Any, low: int, high: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high else 0
