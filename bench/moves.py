"""Single audited moves per second: the service path vs raw sqlite3 doing the same writes."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from datetime import date, timedelta
from pathlib import Path

from storage.chain import GENESIS, canonical_json
from storage.store import Store
from workflow.dates import today
from workflow.service import Service

ROOT = Path(__file__).resolve().parent.parent


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
    began = time.perf_counter()
    for n in range(moves):
        service.advance("bithu", ids[n % len(ids)], "renew_training", on,
                        {"certificate_date": on.isoformat()}, {"CN-NTVĐ": f"r{n}"})
    return moves / (time.perf_counter() - began)


def raw_floor(path: Path, cases: int, moves: int) -> float:
    """Same durable writes through plain sqlite3: version-checked UPDATE + chained INSERT."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE cases (id INTEGER PRIMARY KEY, state TEXT, version INT, seq INT, "
                 "head_hash TEXT, facts TEXT)")
    conn.execute("CREATE TABLE audit_events (id INTEGER PRIMARY KEY, case_id INT, seq INT, "
                 "payload TEXT, prev_hash TEXT, hash TEXT, UNIQUE(case_id, seq))")
    conn.executemany("INSERT INTO cases VALUES (?, 'trained', 1, 1, ?, '{}')",
                     [(i, GENESIS) for i in range(cases)])
    heads = {i: (GENESIS, 1, 1) for i in range(cases)}
    began = time.perf_counter()
    for n in range(moves):
        case_id = n % cases
        head, version, seq = heads[case_id]
        payload = canonical_json({"inputs": {"certificate_date": "2026-01-01"}, "n": n})
        digest = hashlib.sha256(json.dumps([case_id, seq + 1, payload, head]).encode()).hexdigest()
        conn.execute("BEGIN")
        conn.execute("UPDATE cases SET state='trained', version=?, seq=?, head_hash=?, facts=? "
                     "WHERE id=? AND version=?", (version + 1, seq + 1, digest, payload, case_id,
                                                  version))
        conn.execute("INSERT INTO audit_events (case_id, seq, payload, prev_hash, hash) "
                     "VALUES (?, ?, ?, ?, ?)", (case_id, seq + 1, payload, head, digest))
        conn.execute("COMMIT")
        heads[case_id] = (digest, version + 1, seq + 1)
    rate = moves / (time.perf_counter() - began)
    conn.close()
    return rate
