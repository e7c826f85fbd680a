"""Single audited moves per second: the service path vs raw sqlite3 doing the same writes."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from memberflow.app.service import Service
from memberflow.storage.chain import GENESIS, canonical_json
from memberflow.storage.store import Store
from memberflow.workflow.dates import today

ROOT = Path(__file__).resolve().parent.parent
# Single moves are timed in alternating slices of this many, ours then the floor's.
SLICE = 500


def build(path: Path, cases: int) -> tuple[Service, list[int], date]:
    store = Store(str(path), must_exist=False)
    store.create_schema()
    service = Service(store)
    service.install_definitions(ROOT / "definitions")
    directory = store.directory
    directory.add_organization("TU", "Tỉnh ủy", "province_committee", None)
    directory.add_organization("CB", "Chi bộ", "branch", "TU")
    directory.add_user("bithu", "Bí thư")
    directory.grant("bithu", "branch_secretary", "CB")
    start = today() - timedelta(days=30)
    ids = []
    for n in range(cases):
        person = directory.add_person(full_name=f"Người {n}", birth_date=date(1995, 1, 1),
                                      gender="female", ethnicity="Kinh", religion="Không",
                                      education="university", youth_union=True, trade_union=False)
        case_id = service.open_case("bithu", person, "CB", "membership", start)
        service.advance("bithu", case_id, "record_training", start,
                        {"certificate_date": start.isoformat()}, {"CN-NTVĐ": "x"})
        ids.append(case_id)
    return service, ids, start


def service_moves(service: Service, ids: list[int], on: date, moves: int) -> float:
    return moves / service_slice(service, ids, on, 0, moves)


def service_slice(service: Service, ids: list[int], on: date, first: int, count: int) -> float:
    """Seconds for moves ``first`` .. ``first + count - 1`` (round-robin over the cases)."""
    began = time.perf_counter()
    for n in range(first, first + count):
        service.advance("bithu", ids[n % len(ids)], "renew_training", on,
                        {"certificate_date": on.isoformat()}, {"CN-NTVĐ": f"r{n}"})
    return time.perf_counter() - began


def interleaved(ours: Callable[[int, int], float], floor: Callable[[int, int], float],
                moves: int, slice_size: int) -> tuple[float, float]:
    """Rates (per second) of ours and of the floor, run in alternating slices of
    ``slice_size`` moves: other work on the machine then weighs on both alike, and the
    ratio between them stays meaningful on a busy machine. Each callable takes (first move,
    count) and returns the seconds the slice took."""
    spent = [0.0, 0.0]
    for first in range(0, moves, slice_size):
        count = min(slice_size, moves - first)
        spent[0] += ours(first, count)
        spent[1] += floor(first, count)
    return moves / spent[0], moves / spent[1]


def create_floor(path: Path, cases: int) -> sqlite3.Connection:
    """The floor's database: a bare cases table and an audit table, WAL, synchronous=NORMAL."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE cases (id INTEGER PRIMARY KEY, state TEXT, version INT, seq INT, "
                 "head_hash TEXT, facts TEXT)")
    conn.execute("CREATE TABLE audit_events (id INTEGER PRIMARY KEY, case_id INT, seq INT, "
                 "payload TEXT, prev_hash TEXT, hash TEXT, UNIQUE(case_id, seq))")
    conn.executemany("INSERT INTO cases VALUES (?, 'trained', 1, 1, ?, '{}')",
                     [(i, GENESIS) for i in range(cases)])
    return conn


class Floor:
    """Plain sqlite3 doing a move's durable writes: version-checked UPDATE of the case and
    chained INSERT of its audit row. Keeps its chain heads, so it can run slice by slice."""

    def __init__(self, path: Path, cases: int) -> None:
        self.conn = create_floor(path, cases)
        self.cases = cases
        self.heads = {i: (GENESIS, 1, 1) for i in range(cases)}

    def writes(self, n: int) -> tuple[tuple[object, ...], tuple[object, ...]]:
        """Move ``n``'s UPDATE and INSERT parameters (payload JSON and sha256 included)."""
        case_id = n % self.cases
        head, version, seq = self.heads[case_id]
        payload = canonical_json({"inputs": {"certificate_date": "2026-01-01"}, "n": n})
        digest = hashlib.sha256(json.dumps([case_id, seq + 1, payload, head]).encode()).hexdigest()
        self.heads[case_id] = (digest, version + 1, seq + 1)
        return ((version + 1, seq + 1, digest, payload, case_id, version),
                (case_id, seq + 1, payload, head, digest))

    def single(self, first: int, count: int) -> float:
        """Seconds for ``count`` moves, one transaction each."""
        began = time.perf_counter()
        for n in range(first, first + count):
            update, event = self.writes(n)
            self.conn.execute("BEGIN")
            self.conn.execute(FLOOR_UPDATE, update)
            self.conn.execute(FLOOR_INSERT, event)
            self.conn.execute("COMMIT")
        return time.perf_counter() - began

    def close(self) -> None:
        self.conn.close()


FLOOR_UPDATE = ("UPDATE cases SET state='trained', version=?, seq=?, head_hash=?, facts=? "
           "WHERE id=? AND version=?")
FLOOR_INSERT = "INSERT INTO audit_events (case_id, seq, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?)"


def raw_floor(path: Path, cases: int, moves: int) -> float:
    """Same durable writes through plain sqlite3: version-checked UPDATE + chained INSERT."""
    floor = Floor(path, cases)
    try:
        return moves / floor.single(0, moves)
    finally:
        floor.close()


def measure(service: Service, ids: list[int], on: date, floor_path: Path,
            moves: int) -> tuple[float, float]:
    """(ours, floor) in moves per second, in alternating slices of 500 moves."""
    floor = Floor(floor_path, len(ids))
    try:
        return interleaved(lambda first, count: service_slice(service, ids, on, first, count),
                           floor.single, moves, SLICE)
    finally:
        floor.close()

