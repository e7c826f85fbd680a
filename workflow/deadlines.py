"""Deadlines of the moves possible from a state, computed from the case's recorded dates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from memberflow.workflow.dates import add_months
from memberflow.workflow.definition import Deadline, Definition, Labels
from memberflow.workflow.workdays import WorkingCalendar


@dataclass(frozen=True)
class OpenDeadline:
    trigger: str
    labels: Labels
    due_on: date
    counted_from: str
    start: date
    extended: bool


def extension_fact(trigger: str) -> str:
    return f"extended:{trigger}"


def met_fact(trigger: str) -> str:
    """Holds the start date a move with a deadline answered, so that clock stops."""
    return f"met:{trigger}"


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
    """Every deadline whose clock is running, earliest first.

    A deadline runs from its start date until its move is made, for as long as that move can
    still be reached from the case's state: the recognition vote is due 30 working days after
    probation ends even while the case still sits in probation.
    """
    found = []
    ahead = definition.reachable_triggers(state)
    for transition in definition.transitions:
        deadline = transition.deadline
        if deadline is None or transition.trigger not in ahead:
            continue
        raw_start = facts.get(deadline.start)
        if raw_start is None or facts.get(met_fact(transition.trigger)) == raw_start:
            continue
        start = date.fromisoformat(raw_start)
        extended = bool(facts.get(extension_fact(transition.trigger)))
        if any(d.trigger == transition.trigger for d in found):
            continue
        due = due_date(deadline, start, extended, calendar)
        found.append(OpenDeadline(transition.trigger, transition.labels, due, deadline.start,
                                  start, extended))
    return sorted(found, key=lambda d: d.due_on)
