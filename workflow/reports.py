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
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from memberflow.errors import BadInput
from memberflow.workflow.dates import EARLIEST, add_months, format_date, today
from memberflow.workflow.deadlines import due_date
from memberflow.workflow.definition import STAGES, Deadline, Definition, Labels, Transition
from memberflow.workflow.loader import STATE_ENTERED
from memberflow.workflow.workdays import WorkingCalendar

if TYPE_CHECKING:
    from memberflow.app.service import Service

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


def _text(key: str, lang: str) -> str:
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
        raise BadInput(f"{what} {text!r} is not a year; use four digits, e.g. 2026")
    year = int(raw)
    if year < EARLIEST.year:
        raise BadInput(f"{what} {year} is before {EARLIEST.year}")
    if year > today().year:
        raise BadInput(f"{what} {year} is in the future")
    return year


def parse_by(text: str | None) -> list[str]:
    """``org,gender`` → the grouping keys, in the order given (repeats ignored)."""
    if text is None:
        return []
    keys = [key.strip().lower() for key in text.split(",")]
    unknown = [key for key in keys if key not in BY_KEYS]
    if unknown:
        raise BadInput(f"unknown --by key {unknown[0]!r}; keys: {', '.join(BY_KEYS)}")
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


# -- the reports ------------------------------------------------------------------------------------
class Reports:
    def __init__(self, service: Service) -> None:
        from memberflow.storage.reports import ReportQueries

        self.service = service
        self.store = service.store
        self.queries = ReportQueries(service.store.db)

    def _versions(self) -> list[Definition]:
        return [self.service.definition(row["id"]) for row in self.store.definitions.all(DEFINITION)]

    def _newest(self) -> Definition:
        return self.service.definition(self.store.definitions.latest(DEFINITION)["id"])

    def _scope(self, org_code: str | None) -> tuple[list[int] | None, str]:
        """The organization subtree's ids (unknown code: not found) and a title suffix."""
        if org_code is None:
            return None, ""
        ids = self.store.directory.subtree_ids(org_code)
        name = self.store.directory.organization(org_code)["name"]
        return ids, f" — {org_code} ({name})"

    # -- admissions -------------------------------------------------------------------------
    def admissions(self, year_text: str, by_text: str | None, org_code: str | None,
                   lang: str = "vi") -> Report:
        year = parse_year(year_text)
        by = parse_by(by_text)
        org_ids, suffix = self._scope(org_code)
        triggers = admission_triggers(self._versions())
        raw = self.queries.admissions(
            triggers, MOVE_KIND, date(year, 1, 1), date(year + 1, 1, 1), org_ids, by,
            women=WOMEN, majority_ethnicity=MAJORITY_ETHNICITY, no_religion=NO_RELIGION) \
            if triggers else iter(())
        key_columns = [c for key in by for c in (["organization", "organization_name"]
                                                 if key == "org" else [key])]
        rows, total = [], dict.fromkeys(MEASURES, 0)
        for found in raw:
            values = found._mapping
            row = {c: _dimension_value(c, values[c], lang) for c in key_columns}
            row.update({m: int(values[m] or 0) for m in MEASURES})
            for m in MEASURES:
                total[m] += row[m]
            rows.append(row)
        totals = []
        if key_columns:
            label_row: dict[str, Any] = dict.fromkeys(key_columns)
            label_row[key_columns[0]] = _text("total", lang)
            totals = [{**label_row, **total}]
        newest = self._newest()
        moves = ", ".join(t.labels.get(lang) for t in newest.transitions if t.trigger in triggers)
        return Report(
            "admissions", _admissions_title(year, total, lang, moves) + suffix,
            key_columns + list(MEASURES), rows, totals,
            {"year": year, "by": by, "organization": org_code, "admission_moves": triggers,
             "total": total})

    # -- membership -------------------------------------------------------------------------
    def membership(self, as_of: date, org_code: str | None, lang: str = "vi") -> Report:
        org_ids, suffix = self._scope(org_code)
        newest = self._newest()
        order = {name: n for n, name in enumerate(newest.states)}
        counts: dict[str, Counter[tuple[Any, ...]]] = defaultdict(Counter)
        names: dict[str, str] = {}
        categories: dict[tuple[Any, ...], dict[str, Any]] = {}
        for code, name, sha256, state, cases in self.queries.states_on(as_of, org_ids):
            key, category = _category(self.service.definition_by_sha(sha256), state, order, lang)
            categories.setdefault(key, category)
            counts[code][key] += cases
            names[code] = name
        rows, totals = [], Counter[tuple[Any, ...]]()
        for code in sorted(counts):
            for key in sorted(counts[code]):
                rows.append({"organization": code, "organization_name": names[code],
                             **categories[key], "cases": counts[code][key]})
                totals[key] += counts[code][key]
        total_rows = [{"organization": _text("total", lang), "organization_name": None,
                       **categories[key], "cases": totals[key]} for key in sorted(totals)]
        running = {categories[k]["stage"]: n for k, n in totals.items() if categories[k]["state"] is None}
        figures = {"members": running.get("probation", 0) + running.get("official", 0),
                   "official": running.get("official", 0),
                   "probationary": running.get("probation", 0),
                   "applying": running.get("application", 0)}
        return Report(
            "membership", _membership_title(as_of, figures, lang) + suffix,
            ["organization", "organization_name", "stage", "state", "label", "cases"], rows,
            total_rows, {"as_of": as_of, "organization": org_code, **figures})

    # -- durations --------------------------------------------------------------------------
    def durations(self, year_text: str | None, org_code: str | None, lang: str = "vi") -> Report:
        year = parse_year(year_text) if year_text is not None else None
        start, end = (date(year, 1, 1), date(year + 1, 1, 1)) if year else (None, None)
        org_ids, suffix = self._scope(org_code)
        path = main_path(self._newest())
        triggers = [t.trigger for t in path]
        counter = WorkdayCounter(self.service.engine.calendar)
        histograms: dict[str, Counter[int]] = {t: Counter() for t in triggers}
        for trigger, entered_on, moved_on, moves in self.queries.step_durations(
                triggers, MOVE_KIND, STATE_CHANGE_KINDS, start, end, org_ids):
            histograms[trigger][counter.between(entered_on, moved_on)] += moves
        late = self._late_moves(triggers, start, end, org_ids, counter)
        rows = []
        for t in path:
            histogram = histograms[t.trigger]
            rows.append({
                "move": t.trigger, "label": t.labels.get(lang), "from": ", ".join(t.sources),
                "moves": sum(histogram.values()), "median_working_days": median(histogram),
                "deadline": _deadline_text(t.deadline, lang),
                "late": late.get(t.trigger) if t.deadline else None,
            })
        return Report("durations", _durations_title(year, lang) + suffix,
                      ["move", "label", "from", "moves", "median_working_days", "deadline", "late"],
                      rows, [], {"year": year, "organization": org_code, "unit": "working_days"})

    def _late_moves(self, triggers: Sequence[str], start: date | None, end: date | None,
                    org_ids: list[int] | None, counter: WorkdayCounter) -> dict[str, int]:
        """Moves made after their due date, by the same rule as running deadlines
        (``deadlines.due_date``, on the engine's calendar through ``counter``), each under
        the definition version it was made on."""
        late: Counter[str] = Counter()
        for definition in self._versions():
            for trigger in triggers:
                transition = definition.any_transition(trigger)
                deadline = transition.deadline if transition else None
                begins = clock_start(definition, deadline) if deadline else None
                if deadline is None or begins is None:
                    continue
                rows = self.queries.deadline_starts(
                    definition.sha256, trigger, MOVE_KIND, begins.triggers, STATE_CHANGE_KINDS,
                    extension_triggers(definition, trigger), start, end, org_ids)
                dues: dict[tuple[date, bool], date] = {}
                for started_on, extended, moved_on, moves in rows:
                    if started_on is None:
                        continue  # no start recorded: the clock never ran
                    key = (started_on, bool(extended))
                    if key not in dues:
                        dues[key] = due_date(deadline, add_months(started_on, begins.months),
                                             key[1], counter)  # type: ignore[arg-type]
                    if moved_on > dues[key]:
                        late[trigger] += moves
                late.setdefault(trigger, 0)
        return dict(late)


def _dimension_value(column: str, value: Any, lang: str) -> Any:
    if column == "gender":
        return _text(value, lang) if value in ("female", "male") else value
    if column == "youth_union":
        return _text("yes" if value else "no", lang)
    return value


def _category(definition: Definition | None, state: str, order: Mapping[str, int],
              lang: str) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A running case counts in its stage; a finished one under its (terminal) state."""
    found = definition.states.get(state) if definition else None
    if found is None:
        return (len(STAGES), 1, order.get(state, len(order)), state), \
            {"stage": None, "state": state, "label": state}
    stage_at = STAGES.index(found.stage) if found.stage in STAGES else len(STAGES)
    if found.terminal:
        return (stage_at, 1, order.get(state, len(order)), state), \
            {"stage": found.stage, "state": state, "label": found.labels.get(lang)}
    label = _text(found.stage, lang) if found.stage in TEXT else found.stage
    return (stage_at, 0, 0, ""), {"stage": found.stage, "state": None, "label": label}


def _deadline_text(deadline: Deadline | None, lang: str) -> str | None:
    if deadline is None:
        return None
    unit = _text("working_days" if deadline.unit == "working_days" else "months", lang)
    extra = f" (+{deadline.extension_working_days})" if deadline.extension_working_days else ""
    start = _text("entered", lang) if deadline.start == STATE_ENTERED else deadline.start
    return f"{deadline.amount} {unit}{extra} {_text('from', lang)} {start}"


def _admissions_title(year: int, total: Mapping[str, int], lang: str, moves: str) -> str:
    if lang == "en":
        return (f"Admissions in {year} (date of: {moves}): {total['admitted']}, of whom women "
                f"{total['women']}, ethnic minorities {total['ethnic_minority']}, religious "
                f"{total['religious']}, Youth Union members {total['youth_union_members']}")
    return (f"Kết nạp đảng viên năm {year} (theo ngày: {moves}): {total['admitted']}, trong đó "
            f"nữ {total['women']}, dân tộc thiểu số {total['ethnic_minority']}, tôn giáo "
            f"{total['religious']}, đoàn viên {total['youth_union_members']}")


def _membership_title(as_of: date, figures: Mapping[str, int], lang: str) -> str:
    day = format_date(as_of)
    if lang == "en":
        return (f"Members and cases on {day}: {figures['members']} members (official "
                f"{figures['official']}, probationary {figures['probationary']}); "
                f"{figures['applying']} applying")
    return (f"Đảng viên và hồ sơ ngày {day}: {figures['members']} đảng viên (chính thức "
            f"{figures['official']}, dự bị {figures['probationary']}); {figures['applying']} "
            "quần chúng đang xét kết nạp")


def _durations_title(year: int | None, lang: str) -> str:
    if lang == "en":
        when = f"moves made in {year}" if year else "all moves"
        return (f"Working days from entering each state to the next move of the main path ({when}); "
                "late = made after the due date")
    when = f"các bước thực hiện năm {year}" if year else "mọi bước"
    return (f"Số ngày làm việc từ khi vào trạng thái đến bước tiếp theo trên đường chính ({when}); "
            "late = số bước làm sau hạn")
