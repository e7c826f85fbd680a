"""Storage against real SQLite files: the audit chain, all-or-nothing moves, stale writers."""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

import pytest
from conftest import World
from memberflow.errors import Conflict
from memberflow.storage.chain import GENESIS, event_hash
from memberflow.storage.store import Store
from memberflow.workflow.engine import CaseView, MoveRequest


def dump(db_path: Path) -> list[str]:
    with sqlite3.connect(db_path) as conn:
        return list(conn.iterdump())


def test_every_event_is_chained_to_its_predecessor(world: World) -> None:
    case_id = world.official_case()
    events = world.store.cases.history(case_id)
    assert [e["seq"] for e in events] == list(range(1, 13))
    assert events[0]["prev_hash"] == GENESIS
    for previous, event in zip(events, events[1:], strict=False):
        assert event["prev_hash"] == previous["hash"]
    for event in events:
        assert event_hash(event) == event["hash"]
    record = world.store.cases.load(case_id)
    assert (record.head_hash, record.seq, record.state) == (events[-1]["hash"], 12, "official_member")


def test_changing_any_stored_field_changes_the_hash(world: World) -> None:
    case_id = world.open_case()
    event = world.store.cases.history(case_id)[0]
    for field, value in [("actor", "someone_else"), ("to_state", "official_member"),
                         ("business_date", date(2020, 1, 1)), ("payload", "{}")]:
        assert event_hash({**event, field: value}) != event["hash"], field


def test_event_stores_inputs_evidence_and_definition_version(world: World) -> None:
    case_id, _ = world.admitted_case(months_ago=6)
    events = world.store.cases.history(case_id)
    dossier = next(e for e in events if e["trigger"] == "prepare_dossier")
    payload = json.loads(dossier["payload"])
    assert payload["inputs"]["introducers"][0]["person_id"] == world.members[0]
    assert payload["evidence"]["people"][str(world.members[0])]["official"] is True
    assert payload["evidence"]["applicant"]["full_name"] == "Nguyễn Thị Hoa"
    sha = world.store.definitions.latest("membership")["sha256"]
    assert {e["definition_sha256"] for e in events} == {sha}


def test_failure_after_state_change_leaves_database_exactly_as_before(world: World,
                                                                      db_path: Path) -> None:
    """The UPDATE of the case succeeds, then the documents INSERT fails: all rolls back."""
    case_id = world.open_case(on=world.ago(months=2))
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TRIGGER refuse_documents BEFORE INSERT ON documents "
                     "BEGIN SELECT RAISE(ABORT, 'disk quota exceeded'); END")
    before = dump(db_path)
    with pytest.raises(Conflict, match="disk quota exceeded"):
        world.step(case_id, "record_training", world.ago(months=1))
    assert dump(db_path) == before
    record = world.store.cases.load(case_id)
    assert (record.state, record.seq, record.version) == ("candidate", 1, 1)


def test_audit_insert_failure_rolls_back_the_state_change(world: World, db_path: Path) -> None:
    case_id = world.open_case(on=world.ago(months=2))
    with sqlite3.connect(db_path) as conn:
        conn.execute("CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events "
                     "BEGIN SELECT RAISE(ABORT, 'audit volume offline'); END")
    before = dump(db_path)
    with pytest.raises(Conflict):
        world.step(case_id, "record_training", world.ago(months=1))
    assert dump(db_path) == before


def test_stale_writer_gets_conflict_and_writes_nothing(world: World, db_path: Path) -> None:
    case_id = world.open_case(on=world.ago(months=2))
    service, store = world.service, world.store
    stale = store.cases.load(case_id)
    world.step(case_id, "record_training", world.ago(months=1, days=5))
    before = dump(db_path)

    definition = service.definition(stale.definition_id)
    request = MoveRequest("reject_application", frozenset({"branch_secretary"}),
                          world.ago(months=1), {"reason": "trùng hồ sơ"})
    move = service.engine.plan(definition, CaseView(stale.state, stale.facts), request)
    from memberflow.storage.cases import EventDraft

    draft = EventDraft("move", move.trigger, "secretary", move.role, move.business_date, {})
    with pytest.raises(Conflict, match="changed by someone else"):
        store.cases.record_move(stale, move.to_state, move.facts, None, draft, {})
    assert dump(db_path) == before
    assert store.cases.load(case_id).state == "trained"


def test_vietnamese_text_is_stored_nfc_and_intact(world: World) -> None:
    import unicodedata

    reason_nfd = unicodedata.normalize("NFD", "Gia đình chuyển vào Thành phố Hồ Chí Minh")
    person = world.add_person("Nguyễn Thị Hồng")
    case_id = world.open_case(person, on=world.ago(months=2))
    world.step(case_id, "record_training", world.ago(months=1))
    world.step(case_id, "withdraw_application", world.ago(days=3), inputs={"reason": reason_nfd})
    payload = json.loads(world.store.cases.history(case_id)[-1]["payload"])
    assert payload["inputs"]["reason"] == "Gia đình chuyển vào Thành phố Hồ Chí Minh"
    assert payload["inputs"]["reason"] != reason_nfd
    assert payload["evidence"]["applicant"]["full_name"] == "Nguyễn Thị Hồng"


def test_new_case_refused_while_one_is_open(world: World) -> None:
    from memberflow.errors import MoveRefused

    person = world.add_person()
    world.open_case(person)
    with pytest.raises(MoveRefused, match="already has open case"):
        world.open_case(person)


def test_postgresql_sessions_bound_waits_and_long_reads_opt_out(db_url: str,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Every PostgreSQL session memberflow opens has a lock timeout (SQLite's busy timeout) and a
    statement timeout; a statement past it is 'busy' (exit 6), not a database error, and a
    transaction opened for the audit's long reads runs without it."""
    if not db_url.startswith("postgresql"):
        pytest.skip("SQLite has a busy timeout and no statement timeout")
    import memberflow.storage.database as database
    from memberflow.errors import Busy
    from sqlalchemy import text

    monkeypatch.setattr(database, "STATEMENT_TIMEOUT_MS", 300)
    store = Store(db_url, must_exist=False)
    try:
        with store.db.connect() as conn:
            assert conn.execute(text("SHOW lock_timeout")).scalar() == "5s"
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "300ms"
        timed_out = r"^the database did not answer within 0.3 s \(statement timeout\); try again later$"
        with pytest.raises(Busy, match=timed_out), store.db.connect() as conn:
            conn.execute(text("SELECT pg_sleep(1)"))
        with pytest.raises(Busy, match=timed_out), store.db.driver_write() as cursor:
            cursor.execute("SELECT pg_sleep(1)")
        with store.db.connect(unbounded=True) as conn:
            conn.execute(text("SELECT pg_sleep(0.5)"))
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "0"
        with store.db.connect() as conn:  # the opt-out ended with its transaction
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "300ms"
    finally:
        store.close()
