"""The figures a bloc publishes (``memberflow report``), read from the record through
``storage.reports`` and turned into figures by ``workflow.reports``."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from memberflow.errors import NotPermitted
from memberflow.i18n import _
from memberflow.storage.reports import ReportQueries
from memberflow.workflow.dates import add_months, format_date
from memberflow.workflow.deadlines import due_date
from memberflow.workflow.definition import STAGES, Deadline, Definition
from memberflow.workflow.loader import STATE_ENTERED
from memberflow.workflow.reports import (
    DEFINITION,
    MAJORITY_ETHNICITY,
    MEASURES,
    MOVE_KIND,
    NO_RELIGION,
    STATE_CHANGE_KINDS,
    TEXT,
    WOMEN,
    Report,
    WorkdayCounter,
    admission_triggers,
    clock_start,
    extension_triggers,
    main_path,
    median,
    parse_by,
    parse_year,
    text_of,
)

if TYPE_CHECKING:
    from memberflow.app.application import Application
    from memberflow.app.principal import Principal
    from memberflow.app.service import Service


# -- the reports ------------------------------------------------------------------------------------
class Reports:
    def __init__(self, service: Service, visible: list[int] | None = None) -> None:
        self.service = service
        self.store = service.store
        self.queries = ReportQueries(service.store.db)
        self.visible = visible  # organizations counted when no --org is given (None: all)

    def _versions(self) -> list[Definition]:
        return [self.service.definition(row["id"]) for row in self.store.definitions.all(DEFINITION)]

    def _newest(self) -> Definition:
        return self.service.definition(self.store.definitions.latest(DEFINITION)["id"])

    def _scope(self, org_code: str | None) -> tuple[list[int] | None, str]:
        """The organization subtree's ids (unknown code: not found) and a title suffix."""
        if org_code is None:
            return self.visible, ""
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
            label_row[key_columns[0]] = text_of("total", lang)
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
        total_rows = [{"organization": text_of("total", lang), "organization_name": None,
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
        return text_of(value, lang) if value in ("female", "male") else value
    if column == "youth_union":
        return text_of("yes" if value else "no", lang)
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
    label = text_of(found.stage, lang) if found.stage in TEXT else found.stage
    return (stage_at, 0, 0, ""), {"stage": found.stage, "state": None, "label": label}


def _deadline_text(deadline: Deadline | None, lang: str) -> str | None:
    if deadline is None:
        return None
    unit = text_of("working_days" if deadline.unit == "working_days" else "months", lang)
    extra = f" (+{deadline.extension_working_days})" if deadline.extension_working_days else ""
    start = text_of("entered", lang) if deadline.start == STATE_ENTERED else deadline.start
    return f"{deadline.amount} {unit}{extra} {text_of('from', lang)} {start}"


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


class ReportOperations:
    """Reports for a principal: over the organizations they see (all, for an auditor); a
    grouping by a field the definition marks sensitive only for the roles shown it."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self.access = app.access

    def _reports(self, principal: Principal, org_code: str | None) -> Reports:
        visible = self.access.require_scope(principal, None) if org_code is None else None
        if org_code is not None:
            self.access.require_scope(principal, org_code)
        return Reports(self.app.service, visible)

    def admissions(self, principal: Principal, year: str, by: str | None, org_code: str | None,
                   lang: str) -> Report:
        reports = self._reports(principal, org_code)
        rule = self.app.people.personal_data()
        grouped = set(parse_by(by)) & set(rule.sensitive)
        if grouped and not self.access.may_see_anywhere(principal, rule.shown_to):
            raise NotPermitted(_("{user} may not group people by {fields}: the definition shows "
                                 "those fields only to {roles}").format(
                user=principal.username, fields=", ".join(sorted(grouped)),
                roles=", ".join(rule.shown_to)))
        return reports.admissions(year, by, org_code, lang)

    def membership(self, principal: Principal, as_of: date, org_code: str | None, lang: str) -> Report:
        return self._reports(principal, org_code).membership(as_of, org_code, lang)

    def durations(self, principal: Principal, year: str | None, org_code: str | None,
                  lang: str) -> Report:
        return self._reports(principal, org_code).durations(year, org_code, lang)

