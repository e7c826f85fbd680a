"""The move hot path (``storage/move_sql.py`` on the connection a ``Store`` keeps checked out):
the rows it writes, what a failure leaves behind, and that the kept connection is shared
safely. Both backends, real databases."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ADMISSION_PATH, World
from memberflow.app.service import AdvanceRequest
from memberflow.errors import Conflict, MoveRefused, NotFound
from memberflow.storage.verification import verify
from sqlalchemy import text


def request(world: World, case_id: int, trigger: str, on: date,
            from_state: str | None = None) -> AdvanceRequest:
    case = world.store.cases.load(case_id)
    transition = world.service.definition(case.definition_id).transition(
        trigger, from_state or case.state)
    documents = {code: f"{code}-ref" for code in (transition.documents if transition else ())}
    return AdvanceRequest(case_id, trigger, on, world.inputs_for(trigger, on), documents)


def snapshot(world: World, case_ids: list[int]) -> dict[str, Any]:
    cases = world.store.cases
    return {"cases": [cases.load(c) for c in case_ids],
            "histories": [cases.history(c) for c in case_ids],
            "documents": [cases.documents(c) for c in case_ids], "events": cases.count_events()}


def test_case_row_matches_its_last_event_after_moves_that_change_and_keep_columns(
        world: World) -> None:
    """Only changed columns are SET: stays-moves keep state and due date, other moves change
    them; either way the row is what a full write would leave."""
    start = world.ago(months=20)
    case_id = world.open_case(on=start)
    for index, trigger in enumerate(["record_training", "renew_training", *ADMISSION_PATH[1:]]):
        before = world.store.cases.load(case_id)
        world.step(case_id, trigger, start + timedelta(days=10 * index))
        after = world.store.cases.load(case_id)
        due = next(iter(world.service.deadlines(after)), None)
        assert (after.due_on, after.due_move) == ((due.due_on, due.trigger) if due else (None, None))
        assert (after.version, after.seq) == (before.version + 1, before.seq + 1)
        assert after.head_hash == world.store.cases.history(case_id)[-1]["hash"]
    assert world.store.cases.load(case_id).due_on is not None  # some move set a deadline
    assert verify(world.store.db, workers=1).ok


def test_refused_move_writes_nothing_and_the_next_move_goes_through(world: World) -> None:
    case_id = world.open_case(on=world.ago(months=2))
    before = snapshot(world, [case_id])
    with pytest.raises(MoveRefused):
        world.step(case_id, "prepare_dossier", world.ago(months=1))  # not trained yet
    assert snapshot(world, [case_id]) == before
    world.step(case_id, "record_training", world.ago(months=1))
    assert world.store.cases.load(case_id).state == "trained"


def test_unknown_case_is_missing(world: World) -> None:
    with pytest.raises(NotFound, match="case 999999 not found"):
        world.service.advance("secretary", 999_999, "record_training", world.ago(months=1))


def test_batch_decides_in_order_before_it_notices_a_later_unknown_case(world: World) -> None:
    """A batch reads all its cases up front but reports problems in the order of its moves:
    the refusal of move 2 is reported, not the unknown case of move 3; nothing is written."""
    case_id = world.open_case(on=world.ago(months=2))
    before = snapshot(world, [case_id])
    batch = [request(world, case_id, "record_training", world.ago(months=1, days=10)),
             request(world, case_id, "record_training", world.ago(months=1), from_state="candidate"),
             AdvanceRequest(999_999, "record_training", world.ago(months=1))]
    with pytest.raises(MoveRefused, match=f"^case {case_id}: "):
        world.service.advance_many("secretary", batch)
    assert snapshot(world, [case_id]) == before
    with pytest.raises(NotFound, match="case 999999 not found"):
        world.service.advance_many("secretary", batch[:1] + batch[2:])
    assert snapshot(world, [case_id]) == before


def test_batch_moving_cases_several_times_writes_one_chain_each(world: World) -> None:
    cases = [world.open_case(on=world.ago(months=3)) for _ in range(3)]
    on = world.ago(months=2)
    batch = [request(world, c, "record_training", on) for c in cases]
    batch += [request(world, c, "renew_training", world.ago(months=1), from_state="trained")
              for c in cases[:2]]
    recorded = world.service.advance_many("secretary", batch)
    assert [r.seq for r in recorded] == [2, 2, 2, 3, 3]
    for case_id, events in zip(cases, (3, 3, 2), strict=True):
        record = world.store.cases.load(case_id)
        history = world.store.cases.history(case_id)
        assert (record.state, record.seq, record.version, record.head_hash) == \
            ("trained", events, events, history[-1]["hash"])
    assert verify(world.store.db, workers=1).ok


def test_database_refusing_the_write_is_a_conflict_and_the_store_recovers(
        world: World, db_path: Path) -> None:
    """A driver error (here a trigger aborting the audit INSERT) maps to ``Conflict``, rolls
    the move back, and the next move runs on a fresh connection."""
    case_id = world.open_case(on=world.ago(months=2))
    before = snapshot(world, [case_id])
    with world.store.db.engine.begin() as conn:
        conn.execute(text("CREATE TRIGGER offline BEFORE INSERT ON audit_events "
                          "BEGIN SELECT RAISE(ABORT, 'audit volume offline'); END"))
    with pytest.raises(Conflict, match="audit volume offline"):
        world.step(case_id, "record_training", world.ago(months=1))
    assert snapshot(world, [case_id]) == before
    with world.store.db.engine.begin() as conn:
        conn.execute(text("DROP TRIGGER offline"))
    world.step(case_id, "record_training", world.ago(months=1))
    assert world.store.cases.load(case_id).state == "trained"


def test_threads_sharing_a_store_each_get_a_connection(world: World) -> None:
    """One thread uses the kept connection; another arriving meanwhile takes a pooled one."""
    cases = [world.open_case(on=world.ago(months=3)) for _ in range(6)]
    failures: list[BaseException] = []

    def run(mine: list[int]) -> None:
        try:
            for case_id in mine:
                world.step(case_id, "record_training", world.ago(months=2))
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(cases[k::2],)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert all(world.store.cases.load(c).state == "trained" for c in cases)
    assert verify(world.store.db, workers=1).ok
