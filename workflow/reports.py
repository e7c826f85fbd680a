"""The figures a bloc publishes, from the audit record: admissions in a year, membership on a
date, and how long each step of the procedure takes (in working days) and how often its
deadline is missed.

What counts is decided here, from the stored definitions (no SQL): an *admission* is a move
from an application-stage state into a probation-stage state — in the bundled procedure
``hold_ceremony``, whose date is "ngày vào Đảng" and starts the 12 months' probation; the
*main path* is the longest chain of moves from the initial state through non-terminal states
(candidate → … → official member); a deadline's clock starts on the business date of the
move that records its start fact. ``storage.reports`` aggregates in SQL; this module turns
its grouped rows into figures, medians and labels.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from memberflow.errors import BadInput
from memberflow.i18n import _
from memberflow.workflow.dates import EARLIEST, today
from memberflow.workflow.definition import Deadline, Definition, Labels, Transition
from memberflow.workflow.loader import STATE_ENTERED
from memberflow.workflow.workdays import WorkingCalendar

DEFINITION = "membership"
MOVE_KIND, OPEN_KIND = "move", "open"
STATE_CHANGE_KINDS = (OPEN_KIND, MOVE_KIND)  # migrations re-pin a case; they are not steps
BY_KEYS = ("org", "gender", "ethnicity", "religion", "youth_union")
# How people's data is read for the "of whom" columns (values as registered).
WOMEN, MAJORITY_ETHNICITY = "female", "Kinh"
NO_RELIGION = ("Không", "không", "KHÔNG", "")
MEASURES = ("admitted", "women", "ethnic_minority", "religious", "youth_union_members")

TEXT = {
    "total": Labels("Tổng cộng", "Total"),
    "female": Labels("nữ", "female"),
    "male": Labels("nam", "male"),
    "yes": Labels("có", "yes"),
    "no": Labels("không", "no"),
    "application": Labels("Quần chúng đang xét kết nạp", "Applying for admission"),
    "probation": Labels("Đảng viên dự bị", "Probationary members"),
    "official": Labels("Đảng viên chính thức", "Official members"),
    "removal": Labels("Đang xem xét đưa ra khỏi Đảng", "Removal under way"),
    "working_days": Labels("ngày làm việc", "working days"),
    "months": Labels("tháng", "months"),
    "from": Labels("từ", "from"),
    "entered": Labels("ngày vào trạng thái", "entering the state"),
}


def text_of(key: str, lang: str) -> str:
    return TEXT[key].get(lang)


@dataclass
class Report:
    """One report: a title line, rows (what CSV holds), totals shown under the table, and
    the JSON document (``document`` plus ``rows`` and ``totals``)."""

    name: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]]
    totals: list[dict[str, Any]] = field(default_factory=list)
    document: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        found = {"report": self.name, **self.document, "rows": self.rows}
        if self.totals:
            found["totals"] = self.totals
        return found


# -- arguments -----------------------------------------------------------------------------------
def parse_year(text: str, what: str = "--year") -> int:
    raw = text.strip()
    if not raw.isdigit() or len(raw) != 4:
        raise BadInput(_("{what} {text!r} is not a year; use four digits, e.g. 2026").format(
                           what=what, text=text))
    year = int(raw)
    if year < EARLIEST.year:
        raise BadInput(_("{what} {year} is before {year2}").format(what=what, year=year, year2=EARLIEST.year))
    if year > today().year:
        raise BadInput(_("{what} {year} is in the future").format(what=what, year=year))
    return year


def parse_by(text: str | None) -> list[str]:
    """``org,gender`` → the grouping keys, in the order given (repeats ignored)."""
    if text is None:
        return []
    keys = [key.strip().lower() for key in text.split(",")]
    unknown = [key for key in keys if key not in BY_KEYS]
    if unknown:
        raise BadInput(_("unknown --by key {unknown!r}; keys: {by_keys}").format(
                           unknown=unknown[0], by_keys=', '.join(BY_KEYS)))
    return list(dict.fromkeys(keys))


# -- what counts, from the definitions ----------------------------------------------------------
def admission_triggers(definitions: Iterable[Definition]) -> list[str]:
    """Moves that admit: from an application-stage state into a probation-stage one."""
    found = set()
    for definition in definitions:
        states = definition.states
        for t in definition.transitions:
            if t.dest and states[t.dest].stage == "probation" and \
                    any(states[s].stage == "application" for s in t.sources):
                found.add(t.trigger)
    return sorted(found)


def main_path(definition: Definition) -> list[Transition]:
    """The longest chain of state-changing moves from the initial state through non-terminal
    states (ties: the first in the definition); shortcuts such as registering an existing
    member and the exits (rejection, removal) are not on it."""
    memo: dict[str, list[Transition]] = {}

    def longest(state: str, visiting: frozenset[str]) -> list[Transition]:
        if state in memo:
            return memo[state]
        best: list[Transition] = []
        for t in definition.transitions_from(state):
            dest = t.dest
            if not dest or dest == state or dest in visiting or definition.states[dest].terminal:
                continue
            path = [t, *longest(dest, visiting | {dest})]
            if len(path) > len(best):
                best = path
        memo[state] = best
        return best

    return longest(definition.initial, frozenset({definition.initial}))


@dataclass(frozen=True)
class ClockStart:
    """Where a deadline's clock starts in the record: the last earlier event of
    ``triggers`` (None: the event that entered the source state), plus ``months``."""

    triggers: tuple[str, ...] | None
    months: int


def clock_start(definition: Definition, deadline: Deadline) -> ClockStart | None:
    """The event whose business date the deadline's start fact was recorded from; None when
    the fact comes from an input (a date typed in, not an event's date)."""
    if deadline.start == STATE_ENTERED:
        return ClockStart(None, 0)
    if deadline.start == "opened_on":
        return ClockStart((OPEN_KIND,), 0)
    recorders: dict[str, int | None] = {}
    for t in definition.transitions:
        if deadline.start in t.records:
            recorders[t.trigger] = _months_after_move(t, deadline.start, frozenset())
    months = set(recorders.values())
    if not recorders or None in months or len(months) != 1:
        return None
    return ClockStart(tuple(sorted(recorders)), months.pop() or 0)


def _months_after_move(t: Transition, fact: str, seen: frozenset[str]) -> int | None:
    derivation = t.records.get(fact)
    if derivation is None or fact in seen:
        return None
    if derivation.source == "business_date":
        return derivation.add_months
    inner = _months_after_move(t, derivation.source, seen | {fact})
    return None if inner is None else inner + derivation.add_months


def extension_triggers(definition: Definition, trigger: str) -> list[str]:
    return sorted({t.trigger for t in definition.transitions if t.extends_deadline == trigger})


# -- arithmetic -------------------------------------------------------------------------------------
class WorkdayCounter:
    """Working-day arithmetic by a running count over the days seen (one calendar lookup per
    day, grown a year at a time), so thousands of date pairs cost no more than the days they
    span. ``between`` equals ``WorkingCalendar.working_days_between`` and
    ``add_working_days`` equals ``WorkingCalendar.add_working_days``."""

    GROW = 366

    def __init__(self, calendar: WorkingCalendar) -> None:
        self.calendar = calendar
        self._first: date | None = None
        self._count: list[int] = []  # [i]: working days after _first up to _first + i days

    def _index(self, day: date) -> int:
        if self._first is None:
            self._first, self._count = day, [0]
        at = (day - self._first).days
        if at < 0:
            self._grow_down(-at)
            at = (day - self._first).days
        if at >= len(self._count):
            self._grow_up(at - len(self._count) + 1)
        return at

    def _grow_up(self, days: int) -> None:
        assert self._first is not None
        last = self._first + timedelta(days=len(self._count) - 1)
        total = self._count[-1]
        for n in range(1, max(days, self.GROW) + 1):
            total += self.calendar.is_working_day(last + timedelta(days=n))
            self._count.append(total)

    def _grow_down(self, days: int) -> None:
        assert self._first is not None
        days = max(days, self.GROW)
        first = self._first - timedelta(days=days)
        head, total = [0], 0
        for n in range(1, days + 1):
            total += self.calendar.is_working_day(first + timedelta(days=n))
            head.append(total)
        self._count = head[:-1] + [count + total for count in self._count]
        self._first = first

    def between(self, start: date, end: date) -> int:
        self._index(min(start, end))  # first, since growing downwards renumbers the days
        return self._count[self._index(end)] - self._count[self._index(start)]

    def add_working_days(self, start: date, count: int) -> date:
        """The ``count``-th working day after ``start`` (``start`` itself is not counted)."""
        if count <= 0:
            return start
        at = self._index(start)
        target = self._count[at] + count
        while self._count[-1] < target:
            self._grow_up(self.GROW)
        assert self._first is not None
        return self._first + timedelta(days=bisect_left(self._count, target, at + 1))


def median(histogram: Mapping[int, int]) -> float | int | None:
    """The median of values given as value → how many times (the mean of the middle two for
    an even count)."""
    total = sum(histogram.values())
    if not total:
        return None
    lower_at, upper_at = (total - 1) // 2, total // 2
    lower = upper = None
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if lower is None and seen > lower_at:
            lower = value
        if seen > upper_at:
            upper = value
            break
    assert lower is not None and upper is not None
    middle = (lower + upper) / 2
    return int(middle) if middle == int(middle) else middle
