"""Turning cases and events into rows a person reads (labels, dates in dd/mm/yyyy)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Any

from .dates import format_date
from .definition import Definition
from .workdays import WorkingCalendar


def state_row(definition: Definition, state: str, lang: str = "vi") -> dict[str, str]:
    found = definition.states.get(state)
    label = found.labels.get(lang) if found else state
    return {"state": state, "stage": found.stage if found else "?", "label": label}


def event_row(event: Mapping[str, Any], definition: Definition | None,
              lang: str = "vi") -> dict[str, Any]:
    to_label = event["to_state"]
    if definition and event["to_state"] in definition.states:
        to_label = definition.states[event["to_state"]].labels.get(lang)
    payload = json.loads(event["payload"])
    return {
        "seq": event["seq"],
        "business_date": format_date(event["business_date"]),
        "trigger": event["trigger"],
        "from": event["from_state"] or "-",
        "to": event["to_state"],
        "to_label": to_label,
        "actor": event["actor"],
        "role": event["role"],
        "recorded_at": event["recorded_at"],
        "inputs": payload.get("inputs", {}),
        "documents": payload.get("documents", {}),
        "hash": event["hash"],
    }


def days_left_text(due_on: date | None, today: date, calendar: WorkingCalendar) -> str:
    if due_on is None:
        return "-"
    left = calendar.working_days_between(today, due_on)
    if left < 0:
        return f"overdue {-left} wd"
    return f"{left} wd left"
