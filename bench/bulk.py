"""Batched audited moves per second: ``Service.advance_many`` (1,000 moves per transaction,
as ``memberflow case advance-many --all-or-nothing`` commits them) vs raw sqlite3 doing the
same writes batched the same way."""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

from memberflow.app.service import AdvanceRequest, Service

from bench.moves import FLOOR_INSERT, FLOOR_UPDATE, Floor, interleaved

BATCH = 1000
# Moves per figure: five transactions of BATCH (after the single-move figure has warmed up).
MOVES = 5 * BATCH


def service_batches(service: Service, ids: list[int], on: date, first: int, count: int) -> float:
    """Seconds for ``advance_many`` over moves ``first`` .. ``first + count - 1``, ``BATCH`` per
    call (one transaction each)."""
    began = time.perf_counter()
    for start in range(first, first + count, BATCH):
        service.advance_many("bithu", [
            AdvanceRequest(ids[n % len(ids)], "renew_training", on,
                           {"certificate_date": on.isoformat()}, {"CN-NTVĐ": f"b{n}"})
            for n in range(start, min(start + BATCH, first + count))])
    return time.perf_counter() - began


def batched_floor(floor: Floor, first: int, count: int) -> float:
    """Seconds for the floor's writes of ``count`` moves, ``BATCH`` per transaction with
    ``executemany``."""
    began = time.perf_counter()
    for start in range(first, first + count, BATCH):
        writes = [floor.writes(n) for n in range(start, min(start + BATCH, first + count))]
        floor.conn.execute("BEGIN")
        changed = floor.conn.executemany(FLOOR_UPDATE, [update for update, _ in writes]).rowcount
        if changed != len(writes):
            raise RuntimeError("floor: a version check failed")
        floor.conn.executemany(FLOOR_INSERT, [event for _, event in writes])
        floor.conn.execute("COMMIT")
    return time.perf_counter() - began


def measure(service: Service, ids: list[int], on: date, floor_path: Path,
            moves: int = MOVES) -> tuple[float, float]:
    """(ours, floor) in moves per second, one batch of each in turn."""
    floor = Floor(floor_path, len(ids))
    try:
        return interleaved(lambda first, count: service_batches(service, ids, on, first, count),
                           lambda first, count: batched_floor(floor, first, count), moves, BATCH)
    finally:
        floor.close()
