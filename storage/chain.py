"""The per-case hash chain that makes the audit table tamper-evident.

Each event's hash covers every column of the row and its predecessor's hash, so a changed,
removed, reordered or forged row breaks the chain from that row on. The encoding joins the
fields with the unit separator (U+001F), which no field can contain: text inputs refuse
control characters and the payload is JSON (which escapes them).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

GENESIS = "0" * 64
FIELDS = ("case_id", "seq", "kind", "definition_sha256", "trigger", "from_state", "to_state",
          "actor", "role", "recorded_at", "business_date", "payload", "prev_hash")


# Built once: ``json.dumps`` with options builds a new encoder per call, and every move
# encodes its payload and facts.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(data: Any) -> str:
    """One text for one value: sorted keys, no spaces, UTF-8 kept as is."""
    return _CANONICAL.encode(data)


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def chain_digest(case_id: int, seq: int, kind: str, definition_sha256: str, trigger: str,
                 from_state: str | None, to_state: str, actor: str, role: str, recorded_at: str,
                 business_date: Any, payload: str, prev_hash: str) -> str:
    """sha256 of one audit row (its fields in ``FIELDS`` order); dates print as ISO."""
    text = (f"{case_id}\x1f{seq}\x1f{kind}\x1f{definition_sha256}\x1f{trigger}\x1f"
            f"{from_state or ''}\x1f{to_state}\x1f{actor}\x1f{role}\x1f{recorded_at}\x1f"
            f"{business_date}\x1f{payload}\x1f{prev_hash}")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def row_digest(row: Sequence[Any]) -> str:
    """``chain_digest`` of a stored row given as a tuple in ``FIELDS`` order (verify's hot path)."""
    text = (f"{row[0]}\x1f{row[1]}\x1f{row[2]}\x1f{row[3]}\x1f{row[4]}\x1f{row[5] or ''}\x1f"
            f"{row[6]}\x1f{row[7]}\x1f{row[8]}\x1f{row[9]}\x1f{row[10]}\x1f{row[11]}\x1f{row[12]}")
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def event_hash(row: Mapping[str, Any]) -> str:
    return chain_digest(*(row[name] for name in FIELDS))


def json_row_digest(row: Sequence[Any]) -> str:
    """The digest rows were sealed with before the joined encoding (commit c16d113): sha256 of
    the canonical JSON array of the same fields, dates as ISO. Rows written then keep
    verifying under it; ``audit verify`` accepts it only before a chain's first newer row."""
    fields = list(row[:len(FIELDS)])
    day = fields[10]
    fields[10] = day.isoformat() if isinstance(day, date) else day
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()


def sealed(row: Mapping[str, Any], json_allowed: bool = True) -> bool:
    """Whether a row's stored hash matches its content (under the first encoding too, if allowed)."""
    fields = [row[name] for name in FIELDS]
    return row["hash"] == chain_digest(*fields) or (json_allowed and row["hash"] == json_row_digest(fields))


def seal(row: dict[str, Any]) -> dict[str, Any]:
    row["hash"] = event_hash(row)
    return row
