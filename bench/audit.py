"""Audit verify and replay throughput over a large chained record, beside a raw floor.

The record is made by copying one real, legal history (admission to official recognition,
12 events made through the service) to many cases, re-chaining every copy, so verify and
replay do real work on every event.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import date, timedelta
from pathlib import Path

from memberflow.app.service import Service
from memberflow.storage.chain import GENESIS, event_hash, row_digest
from memberflow.storage.store import Store
from memberflow.storage.verification import verify
from memberflow.workflow.dates import add_months, today

ROOT = Path(__file__).resolve().parent.parent
ADMISSION = ["record_training", "prepare_dossier", "verify_background", "record_branch_vote",
             "record_committee_vote", "decide_admission", "hold_ceremony"]
RECOGNITION = ["complete_probation", "record_recognition_vote",
               "record_recognition_committee_vote", "recognize_official"]
INPUTS = {
    "verify_background": {"verification_conclusion": "Lý lịch rõ ràng"},
    "record_branch_vote": {"votes_for": 9, "votes_eligible": 10},
    "record_committee_vote": {"votes_for": 7, "votes_eligible": 9},
    "decide_admission": {"decision_number": "12-QĐ/ĐUK"},
    "record_recognition_vote": {"votes_for": 10, "votes_eligible": 11},
    "record_recognition_committee_vote": {"votes_for": 8, "votes_eligible": 9},
    "recognize_official": {"decision_number": "34-QĐ/ĐUK"},
}
ROLE_OF = {"verify_background": "danguy", "record_committee_vote": "danguy",
           "record_recognition_committee_vote": "danguy", "decide_admission": "btv",
           "recognize_official": "btv"}


def template(path: Path) -> tuple[Service, int]:
    """A database with one full, legal membership history; returns (service, case id)."""
    store = Store(str(path), must_exist=False)
    store.create_schema()
    service = Service(store)
    service.install_definitions(ROOT / "definitions")
    d = store.directory
    for code, kind, parent in [("TU", "province_committee", None), ("DBK", "committee_above", "TU"),
                               ("CS", "grassroots", "DBK"), ("CB", "branch", "CS")]:
        d.add_organization(code, code, kind, parent)
    for user, role, org in [("bithu", "branch_secretary", "CB"), ("danguy", "grassroots_committee", "CS"),
                            ("btv", "standing_committee_above", "DBK"),
                            ("btc", "organization_department", "TU")]:
        d.add_user(user, user)
        d.grant(user, role, org)
    members = [_person(d, f"Đảng viên {n}") for n in range(2)]
    for member in members:
        case = service.open_case("btc", member, "CB", "membership", add_months(today(), -60))
        service.advance("btc", case, "register_existing_member", add_months(today(), -60),
                        {"admission_date": "2000-01-01", "official_since": "2001-01-01",
                         "party_card_number": "1"})
    start = add_months(today(), -20)
    case = service.open_case("bithu", _person(d, "Người xin vào Đảng"), "CB", "membership", start)
    on = start
    for n, trigger in enumerate(ADMISSION):
        on = start + timedelta(days=10 * n)
        _step(service, case, trigger, on, members)
    for n, trigger in enumerate(RECOGNITION):
        _step(service, case, trigger, add_months(on, 12) + timedelta(days=5 * n), members)
    return service, case


def _person(directory, name: str) -> int:  # type: ignore[no-untyped-def]
    return directory.add_person(full_name=name, birth_date=date(1995, 5, 5), gender="female",
                                ethnicity="Kinh", religion="Không", education="university",
                                youth_union=True, trade_union=True)


def _step(service: Service, case: int, trigger: str, on: date, members: list[int]) -> None:
    inputs = dict(INPUTS.get(trigger, {}))
    if trigger == "record_training":
        inputs["certificate_date"] = (on - timedelta(days=5)).isoformat()
    elif trigger == "prepare_dossier":
        inputs["introducers"] = f"{members[0]}:24,{members[1]}:30"
    elif trigger == "hold_ceremony":
        inputs["helper"] = members[0]
    record = service.store.cases.load(case)
    transition = service.definition(record.definition_id).transition(trigger, record.state)
    documents = {code: "x" for code in transition.documents} if transition else {}
    service.advance(ROLE_OF.get(trigger, "bithu"), case, trigger, on, inputs, documents)


def multiply(path: Path, service: Service, case_id: int, copies: int) -> int:
    """Copy the template case ``copies`` times with fresh chains; returns events written."""
    events = service.store.cases.history(case_id)
    record = service.store.cases.load(case_id)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    base = conn.execute("SELECT max(id) FROM cases").fetchone()[0]
    written = 0
    for start in range(0, copies, 5000):
        case_rows, event_rows = [], []
        for new_id in range(base + 1 + start, base + 1 + min(copies, start + 5000)):
            prev = GENESIS
            for event in events:
                row = {**event, "case_id": new_id, "prev_hash": prev}
                row["hash"] = event_hash(row)
                prev = row["hash"]
                event_rows.append(row)
            case_rows.append((new_id, record.person_id, record.organization_id, record.definition_id,
                              record.state, record.version, record.seq, prev,
                              json.dumps(record.facts), record.opened_on.isoformat(), "x"))
        conn.executemany("INSERT INTO cases (id, person_id, organization_id, definition_id, state, "
                         "version, seq, head_hash, facts, opened_on, updated_at) VALUES "
                         "(?,?,?,?,?,?,?,?,?,?,?)", case_rows)
        conn.executemany(
            "INSERT INTO audit_events (case_id, seq, kind, definition_sha256, trigger, from_state, "
            "to_state, actor, role, recorded_at, business_date, payload, prev_hash, hash) VALUES "
            "(:case_id, :seq, :kind, :definition_sha256, :trigger, :from_state, :to_state, :actor, "
            ":role, :recorded_at, :business_date, :payload, :prev_hash, :hash)",
            [{**r, "business_date": r["business_date"].isoformat()} for r in event_rows])
        conn.commit()
        written += len(event_rows)
    conn.close()
    return written


def raw_floor(path: Path) -> float:
    """Plain sqlite3 reading every event in chain order and recomputing its sha256 with the
    same encoding, in one process: the floor verify is compared to."""
    conn = sqlite3.connect(path)
    began, count = time.perf_counter(), 0
    cursor = conn.execute("SELECT case_id, seq, kind, definition_sha256, trigger, from_state, "
                          "to_state, actor, role, recorded_at, business_date, payload, prev_hash, hash "
                          "FROM audit_events ORDER BY case_id, seq")
    while rows := cursor.fetchmany(5000):
        for row in rows:
            if row_digest(row) != row[13]:
                raise AssertionError("floor found a broken row")
            count += 1
    conn.close()
    return count / (time.perf_counter() - began)


def verify_rate(service: Service, workers: int | None = None) -> tuple[float, int]:
    began = time.perf_counter()
    report = verify(service.store.db, workers=workers)
    assert report.ok, report.breaks[:3]
    return report.events / (time.perf_counter() - began), report.events


def replay_rate(service: Service, workers: int | None = None) -> float:
    began = time.perf_counter()
    summary = service.replay_all(workers=workers)
    assert not summary.divergent, summary.divergent[:3]
    return summary.events / (time.perf_counter() - began)
