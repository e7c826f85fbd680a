"""Lint a procedure definition beyond validation: rules that load but can never work as written.

Validation (``loader``) refuses what the engine cannot run. Lint finds what runs but cannot
happen: a deadline whose clock never starts, a guard that never holds, two guards that
contradict each other, a move no user of this installation may make. Each finding points at
the YAML line to change and says why in one sentence, so an administrator fixes the file
before officers meet the problem on a real case.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from memberflow.i18n import N_, _
from memberflow.workflow.definition import Definition, GuardUse, Transition
from memberflow.workflow.guards import REGISTRY, parse_ratio
from memberflow.workflow.loader import STATE_ENTERED, graph_problems

MOVE_DATE = "business_date"
# Facts every case has from its opening on (``Engine.opening_facts``).
ALWAYS_RECORDED = frozenset({STATE_ENTERED, "opened_on"})
# The only guard parameters that read the move's own date; every other one looks business_date
# up among the recorded facts, where it never is.
READS_MOVE_DATE = frozenset({("months_elapsed", "until"), ("dates_in_order", "dates")})
LOWER_BOUND_VOTES = {"vote_ratio_at_least": N_("at least"), "vote_ratio_above": N_("more than")}
UPPER_BOUND_VOTES = {"vote_ratio_below": "below"}

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One lint result, printed like a compiler message: ``file:line: severity: message``."""

    file: str
    line: int
    severity: Severity
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.message}"


def lint(definition: Definition, granted_roles: set[str] | frozenset[str] | None = None) -> list[Finding]:
    """Every finding, ordered by line; ``granted_roles`` (roles any user holds) enables the role check."""
    ctx = _Context(definition, _reach(definition))
    found = [*_graph(ctx), *_deadlines(ctx), *_dates_read(ctx), *_implicit_records(ctx),
             *_guard_params(ctx)]
    if granted_roles is not None:
        found.extend(_roles(ctx, granted_roles))
    return sorted(found, key=lambda f: (f.file, f.line, f.code, f.message))


def has_errors(findings: Iterable[Finding], strict: bool = False) -> bool:
    """Whether to refuse the definition: any error, or with ``strict`` any finding at all."""
    return any(strict or finding.severity == "error" for finding in findings)


# -- reachability ---------------------------------------------------------------------------------
def _reach(definition: Definition) -> dict[str, frozenset[str]]:
    """For each state, the states a case in it can still get to (itself included)."""
    following: dict[str, set[str]] = {name: set() for name in definition.states}
    for t in definition.transitions:
        for source in t.sources:
            following.setdefault(source, set()).add(t.destination(source))
    reach = {}
    for start in following:
        seen, todo = {start}, [start]
        while todo:
            for nxt in following.get(todo.pop(), set()) - seen:
                seen.add(nxt)
                todo.append(nxt)
        reach[start] = frozenset(seen)
    return reach


@dataclass(frozen=True)
class _Context:
    """The definition with its reachability, computed once per lint run."""

    definition: Definition
    reach: dict[str, frozenset[str]]

    @property
    def live(self) -> frozenset[str]:
        return self.reach.get(self.definition.initial, frozenset())

    def is_live(self, t: Transition) -> bool:
        return any(source in self.live for source in t.sources)

    def can_precede(self, before: Transition, after: Transition) -> bool:
        """Some case can make ``before`` and then, later or at once, reach a source of ``after``."""
        for source in before.sources:
            dest = before.destination(source)
            if source in self.live and self.reach.get(dest, frozenset({dest})) & set(after.sources):
                return True
        return False

    def recorded_before(self, t: Transition, itself: bool) -> set[str]:
        """Facts a case may hold when ``t`` is made; ``itself``: an earlier making of ``t`` counts."""
        facts = set(ALWAYS_RECORDED)
        for other in self.definition.transitions:
            if (itself or other is not t) and self.can_precede(other, t):
                facts.update(other.records)
        return facts

    def finding(self, severity: Severity, line: int, code: str, message: str) -> Finding:
        return Finding(self.definition.file, line, severity, code, message)


# -- the rules ------------------------------------------------------------------------------------
def _graph(ctx: _Context) -> Iterator[Finding]:
    """The loader's own graph checks, run on the object so a definition built in code is checked too."""
    for problem in graph_problems(ctx.definition.states, ctx.definition.transitions,
                                  ctx.definition.initial):
        yield ctx.finding("error", problem.line, problem.kind, problem.message)


def _roles(ctx: _Context, granted: set[str] | frozenset[str]) -> Iterator[Finding]:
    for t in ctx.definition.transitions:
        if not set(t.roles) & granted:
            yield ctx.finding("warning", t.line_of("roles"), "no-granted-role",
                              _("transition {trigger!r} may be made only by {roles}; no user of this "
                                "installation holds {any_of}, so no one can make it").format(
                                  trigger=t.trigger, roles=', '.join(t.roles), any_of=_any_of(t.roles)))


def _any_of(roles: tuple[str, ...]) -> str:
    return _("that role") if len(roles) == 1 else _("any of these roles")


def _deadlines(ctx: _Context) -> Iterator[Finding]:
    """A deadline runs from its start fact while its move is ahead; both must be possible."""
    for t in ctx.definition.transitions:
        deadline = t.deadline
        if deadline is None:
            continue
        if not ctx.is_live(t):
            yield ctx.finding("error", t.line_of("deadline"), "deadline-unreachable",
                              _("transition {trigger!r} has a deadline that never runs: it starts only "
                                "from {sources}, which cannot be reached from {initial!r}").format(
                                  trigger=t.trigger, sources=', '.join(t.sources),
                                  initial=ctx.definition.initial))
        elif deadline.start not in ctx.recorded_before(t, itself=True):
            yield ctx.finding("error", t.line_of("deadline.from"), "deadline-never-starts",
                              _("transition {trigger!r} deadline counts from {start!r}, {unrecorded}, so "
                                "its clock never starts").format(
                                  trigger=t.trigger, start=deadline.start,
                                  unrecorded=_unrecorded(deadline.start)))
        if deadline.extension_working_days and not any(
                other.extends_deadline == t.trigger for other in ctx.definition.transitions):
            yield ctx.finding("warning", t.line_of("deadline.extension"), "extension-never-granted",
                              _("transition {trigger!r} deadline extension of {extension_working_days} "
                                "working days can never be granted: no move names {trigger!r} in "
                                "extends_deadline").format(
                                  trigger=t.trigger, extension_working_days=deadline.extension_working_days))


def _unrecorded(name: str) -> str:
    if name == MOVE_DATE:
        return _("which is the date of each move, never a recorded fact")
    return _("which no move that can come before it records")


def _dates_read(ctx: _Context) -> Iterator[Finding]:
    """A date a guard or record reads must be recordable before the move on at least one path;
    when no path records it, the guard never holds (or the fact is never set)."""
    for t in ctx.definition.transitions:
        if not ctx.is_live(t):
            continue  # reported as an unreachable state
        inputs = {spec.name for spec in t.inputs}
        before = ctx.recorded_before(t, itself=False) | inputs
        for guard in t.guards:
            for key, kind, name in _date_params(guard):
                readable = before | ({MOVE_DATE} if (guard.name, key) in READS_MOVE_DATE else set())
                if name not in readable:
                    yield _unreadable_date(ctx, t, guard, key, kind, name)
        yield from _records_read(ctx, t, ctx.recorded_before(t, itself=True) | inputs | {MOVE_DATE})


def _implicit_records(ctx: _Context) -> Iterator[Finding]:
    """A date input other moves read, recorded by no ``records``: a stored version written
    before ``records`` loads that way (each move taking it records it); a new one may not."""
    for t in ctx.definition.transitions:
        for name in t.implicit_records:
            yield ctx.finding("error", t.line_of("inputs"), "implicit-record",
                              _("transition {trigger!r} takes date input {name!r}, which another move "
                                "reads but no move records (read so only in versions written before "
                                "records); write records: {{{name}: {name}}}").format(
                                  trigger=t.trigger, name=name))


def _date_params(guard: GuardUse) -> Iterator[tuple[str, str, str]]:
    """(parameter, kind, date name) for every date a guard reads, as the registry declares them."""
    for key, param in REGISTRY[guard.name].params.items():
        value = guard.params.get(key)
        names = value if param.kind == "date_refs" and isinstance(value, list) else \
            [value] if param.kind == "date_ref" else []
        yield from ((key, param.kind, name) for name in names
                    if isinstance(name, str) and not param.may_be_unrecorded)


def _unreadable_date(ctx: _Context, t: Transition, guard: GuardUse, key: str, kind: str,
                     name: str) -> Finding:
    # dates_in_order skips a date it cannot find; every other date guard fails without it.
    severity: Severity = "warning" if kind == "date_refs" else "error"
    outcome = _("never compares it") if kind == "date_refs" else _("never holds")
    return ctx.finding(severity, guard.param_lines.get(key, guard.line), "unrecorded-date",
                       _("transition {trigger!r} guard {name!r} reads {name2!r}, {unrecorded}, so the "
                         "guard {outcome}").format(
                           trigger=t.trigger, name=guard.name, name2=name, unrecorded=_unrecorded(name),
                           outcome=outcome))


def _records_read(ctx: _Context, t: Transition, known: set[str]) -> Iterator[Finding]:
    known = set(known)
    for fact, derivation in t.records.items():
        if derivation.source not in known:
            yield ctx.finding("warning", t.line_of(f"records.{fact}"), "record-never-set",
                              _("transition {trigger!r} records {fact!r} from {source!r}, {unrecorded}, so "
                                "{fact!r} is never recorded by this move").format(
                                  trigger=t.trigger, fact=fact, source=derivation.source,
                                  unrecorded=_unrecorded(derivation.source)))
        known.add(fact)  # later entries of the same move may read it


def _guard_params(ctx: _Context) -> Iterator[Finding]:
    for t in ctx.definition.transitions:
        for guard in t.guards:
            instead = REGISTRY[guard.name].superseded_by
            if instead:
                yield ctx.finding("warning", guard.line, "superseded-guard",
                                  _("transition {trigger!r} guard {name!r} is kept only so stored versions "
                                    "that use it still work; write {instead}").format(
                                      trigger=t.trigger, name=guard.name, instead=_(instead)))
            check = _SINGLE_GUARD_RULES.get(guard.name)
            if check:
                yield from check(ctx, t, guard)
        yield from _vote_pairs(ctx, t)
        yield from _months_against_order(ctx, t)


def _age(ctx: _Context, t: Transition, guard: GuardUse) -> Iterator[Finding]:
    low, high = guard.params.get("min_years"), guard.params.get("max_years")
    consent = guard.params.get("consent_document")
    if not isinstance(low, int) or not isinstance(high, int) or low < high:
        return
    line, what = guard.param_lines.get("max_years", guard.line), _("transition {trigger!r} guard "
                                                                   "age_between").format(trigger=t.trigger)
    if low > high and not consent:
        yield ctx.finding("error", line, "age-bounds",
                          _("{what}: min_years {low} is above max_years {high}: no applicant can be at "
                            "least {low} and at most {high} years old, so the guard never holds").format(
                              what=what, low=low, high=high))
    elif low > high:
        yield ctx.finding("warning", line, "age-bounds",
                          _("{what}: min_years {low} is above max_years {high}: every applicant old enough "
                            "is over the maximum, so the move always needs document {consent}").format(
                              what=what, low=low, high=high, consent=consent))
    else:
        unless = _(" without document {consent}").format(consent=consent) if consent else ""
        yield ctx.finding("warning", line, "age-bounds",
                          _("{what}: min_years and max_years are both {low}: ages count in whole months, "
                            "so only an applicant aged exactly {low} years and 0 months "
                            "passes{unless}").format(what=what, low=low, unless=unless))


def _vote_alone(ctx: _Context, t: Transition, guard: GuardUse) -> Iterator[Finding]:
    ratio, line = parse_ratio(guard.params.get("ratio")), guard.line
    what = _("transition {trigger!r} guard {name}").format(trigger=t.trigger, name=guard.name)
    if ratio is None:
        return
    if guard.params.get("votes_for") == guard.params.get("votes_eligible"):
        holds = guard.name != "vote_ratio_below" and not (guard.name == "vote_ratio_above" and ratio == 1)
        yield ctx.finding("warning" if holds else "error", line, "vote-same-input",
                          _("{what} reads input {params!r} as both votes for and eligible voters, so votes "
                            "for always equal eligible voters and the guard {outcome}").format(
                              what=what, params=guard.params.get('votes_for'),
                              outcome=_('always holds') if holds else _('never holds')))
    elif guard.name == "vote_ratio_above" and ratio == 1:
        yield ctx.finding("error", guard.param_lines.get("ratio", line), "vote-never-holds",
                          _("{what} needs more than all eligible voters (ratio 1) to vote for, and votes "
                            "for can never exceed eligible voters, so the guard never holds").format(
                              what=what))


def _vote_pairs(ctx: _Context, t: Transition) -> Iterator[Finding]:
    """A lower bound (at least / more than r) and an upper bound (below s) on the same votes
    both hold for some vote exactly when s > r: for s <= r no count lies between them."""
    for low in (g for g in t.guards if g.name in LOWER_BOUND_VOTES):
        for high in (g for g in t.guards if g.name in UPPER_BOUND_VOTES):
            same = all(low.params.get(k) == high.params.get(k) for k in ("votes_for", "votes_eligible"))
            r, s = _ratio(low), _ratio(high)
            if not same or r is None or s is None or s > r:
                continue
            later = max(low, high, key=lambda g: g.line)
            yield ctx.finding("error", later.param_lines.get("ratio", later.line), "vote-contradiction",
                              _("transition {trigger!r} guards {name} {r} and {name2} {s} read the same "
                                "votes ({votes_for} of {votes_eligible}) and can never both hold: votes "
                                "for cannot be {lower_bound_votes} {r} and below {s} of the eligible "
                                "voters at once").format(
                                  trigger=t.trigger, name=low.name, r=r, name2=high.name, s=s,
                                  votes_for=low.params['votes_for'],
                                  votes_eligible=low.params['votes_eligible'],
                                  lower_bound_votes=_(LOWER_BOUND_VOTES[low.name])))


def _ratio(guard: GuardUse) -> Fraction | None:
    return parse_ratio(guard.params.get("ratio"))


def _dates_repeated(ctx: _Context, t: Transition, guard: GuardUse) -> Iterator[Finding]:
    dates = guard.params.get("dates")
    if not isinstance(dates, list):
        return
    line = guard.param_lines.get("dates", guard.line)
    for name in dict.fromkeys(d for d in dates if dates.count(d) > 1):
        first, last = dates.index(name), len(dates) - 1 - dates[::-1].index(name)
        between = [d for d in dict.fromkeys(dates[first + 1:last]) if d != name]
        effect = (_(", so {between} must fall on the same day as {name}").format(
                      between=', '.join(between), name=name) if between
                  else _(" in a row, which checks nothing"))
        yield ctx.finding("warning", line, "dates-repeated",
                          _("transition {trigger!r} guard dates_in_order names {name!r} more than "
                            "once{effect}; list each date once").format(
                              trigger=t.trigger, name=name, effect=effect))


def _months_same_date(ctx: _Context, t: Transition, guard: GuardUse) -> Iterator[Finding]:
    since, until = guard.params.get("since"), guard.params.get("until", MOVE_DATE)
    if since == until:
        months = guard.params.get("months")
        yield ctx.finding("error", guard.param_lines.get("until", guard.line), "months-contradiction",
                          _("transition {trigger!r} guard months_elapsed counts {months} months from "
                            "{since!r} to the same date, so the guard never holds").format(
                              trigger=t.trigger, months=months, since=since))


def _months_against_order(ctx: _Context, t: Transition) -> Iterator[Finding]:
    """months_elapsed needs ``until`` after ``since``; dates_in_order listing them the other way
    round needs ``until`` on or before ``since``: both cannot hold."""
    orders = [g.params.get("dates") for g in t.guards if g.name == "dates_in_order"]
    for guard in (g for g in t.guards if g.name == "months_elapsed"):
        since, until = guard.params.get("since"), guard.params.get("until", MOVE_DATE)
        if since != until and any(isinstance(d, list) and until in d and since in d[d.index(until) + 1:]
                                  for d in orders):
            yield ctx.finding("error", guard.line, "months-contradiction",
                              _("transition {trigger!r} guard months_elapsed needs {until} at least "
                                "{params} months after {since}, but dates_in_order puts {until} on or "
                                "before {since}, so the two guards never both hold").format(
                                  trigger=t.trigger, until=until, params=guard.params.get('months'),
                                  since=since))


_SINGLE_GUARD_RULES = {
    "age_between": _age,
    "vote_ratio_at_least": _vote_alone,
    "vote_ratio_above": _vote_alone,
    "vote_ratio_below": _vote_alone,
    "dates_in_order": _dates_repeated,
    "months_elapsed": _months_same_date,
}
