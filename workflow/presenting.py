"""Turning cases and events into rows a person reads (labels, dates in dd/mm/yyyy)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from memberflow.workflow.dates import format_date
from memberflow.workflow.definition import Definition


def state_row(definition: Definition, state: str, lang: str = "vi") -> dict[str, str]:
    found = definition.states.get(state)
    label = found.labels.get(lang) if found else state
    return {"state": state, "stage": found.stage if found else "?", "label": label}


def event_row(event: Mapping[str, Any], definition: Definition | None,
              lang: str = "vi", full: bool = False) -> dict[str, Any]:
    """One audit event for reading; ``full`` (JSON) keeps ISO dates, evidence and hashes."""
    to_label = event["to_state"]
    if definition and event["to_state"] in definition.states:
        to_label = definition.states[event["to_state"]].labels.get(lang)
    payload = json.loads(event["payload"])
    row = {
        "seq": event["seq"],
        "business_date": event["business_date"] if full else format_date(event["business_date"]),
        "trigger": event["trigger"],
        "from": event["from_state"] or "-",
        "to": event["to_state"],
        "to_label": to_label,
        "actor": event["actor"],
        "role": event["role"],
        "recorded_at": event["recorded_at"],
        "inputs": payload.get("inputs", {}),
        "documents": payload.get("documents", {}),
    }
    if full:
        row.update(kind=event["kind"], evidence=payload.get("evidence", {}),
                   definition_sha256=event["definition_sha256"], prev_hash=event["prev_hash"],
                   hash=event["hash"])
    return row
