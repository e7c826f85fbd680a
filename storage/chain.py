"""The per-case hash chain that makes the audit table tamper-evident.

Each event's hash covers every column of the row and its predecessor's hash, so a changed,
removed, reordered or forged row breaks the chain from that row on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

GENESIS = "0" * 64


def canonical_json(data: Any) -> str:
    """One text for one value: sorted keys, no spaces, UTF-8 kept as is."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def event_hash(row: Mapping[str, Any]) -> str:
    """sha256 over the canonical encoding of an audit row (without its own hash)."""
    business = row["business_date"]
    fields = [
        row["case_id"], row["seq"], row["kind"], row["definition_sha256"], row["trigger"],
        row["from_state"], row["to_state"], row["actor"], row["role"], row["recorded_at"],
        business.isoformat() if isinstance(business, date) else business,
        row["payload"], row["prev_hash"],
    ]
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()


def seal(row: dict[str, Any]) -> dict[str, Any]:
    row["hash"] = event_hash(row)
    return row
