"""Deadlines of the moves possible from a state, computed from the case's recorded dates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from .dates import add_months
from .definition import Deadline, Definition, Labels
from .workdays import WorkingCalendar


@dataclass(frozen=True)
class OpenDeadline:
    trigger: str
    labels: Labels
    due_on: date
    counted_from: str
    start: date
    extended: bool

    def days_left(self, calendar: WorkingCalendar, on: date) -> int:
        """Working days left until the due date (negative when overdue)."""
        return calendar.working_days_between(on, self.due_on)


def extension_fact(trigger: str) -> str:
    return f"extended:{trigger}"


def due_date(deadline: Deadline, start: date, extended: bool, calendar: WorkingCalendar) -> date:
    if deadline.unit == "months":
        due = add_months(start, deadline.amount)
    else:
        due = calendar.add_working_days(start, deadline.amount)
    if extended and deadline.extension_working_days:
        due = calendar.add_working_days(due, deadline.extension_working_days)
    return due


def open_deadlines(definition: Definition, state: str, facts: Mapping[str, Any],
                   calendar: WorkingCalendar) -> list[OpenDeadline]:
    """Every deadline running in ``state``, earliest first; those whose start is unknown wait."""
    found = []
    for transition in definition.transitions_from(state):
        deadline = transition.deadline
        raw_start = facts.get(deadline.start) if deadline else None
        if deadline is None or raw_start is None:
            continue
        start = date.fromisoformat(raw_start)
        extended = bool(facts.get(extension_fact(transition.trigger)))
        due = due_date(deadline, start, extended, calendar)
        found.append(OpenDeadline(transition.trigger, transition.labels, due, deadline.start,
                                  start, extended))
    return sorted(found, key=lambda d: d.due_on)
