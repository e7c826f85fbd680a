"""``Service.advance_many``: many moves in one transaction, all or nothing, on both backends."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pytest
from conftest import ACTING, World

from storage.audit import verify
from workflow.errors import MoveRefused, NotPermitted
from workflow.service import AdvanceRequest


def request(world: World, case_id: int, trigger: str, on: date, from_state: str | None = None,
            **inputs: Any) -> AdvanceRequest:
    """The batch item ``World.step`` would send one at a time: standard inputs and the documents
    the move needs from ``from_state`` (default: the case's state now)."""
    case = world.store.cases.load(case_id)
    transition = world.service.definition(case.definition_id).transition(
        trigger, from_state or case.state)
    documents = {code: f"{code}-ref" for code in (transition.documents if transition else ())}
    return AdvanceRequest(case_id, trigger, on, {**world.inputs_for(trigger, on), **inputs}, documents)


def record(world: World, case_ids: list[int]) -> dict[str, Any]:
    """Everything a batch could change about these cases, to compare before and after."""
    cases = world.store.cases
    return {"cases": [cases.load(case_id) for case_id in case_ids],
            "histories": [cases.history(case_id) for case_id in case_ids],
            "documents": [cases.documents(case_id) for case_id in case_ids],
            "events": cases.count_events()}


def test_batch_lands_with_one_chained_event_per_move(world: World) -> None:
    on = world.ago(months=1)
    case_ids = [world.open_case(on=world.ago(months=2)) for _ in range(4)]
    events_before = world.store.cases.count_events()

    recorded = world.service.advance_many(
        "secretary", [request(world, case_id, "record_training", on) for case_id in case_ids])

    assert [(r.case_id, r.seq, r.move.to_state) for r in recorded] == \
        [(case_id, 2, "trained") for case_id in case_ids]
    assert world.store.cases.count_events() == events_before + len(case_ids)
    for case_id in case_ids:
        last = world.store.cases.history(case_id)[-1]
        assert (last["seq"], last["trigger"], last["actor"], last["to_state"]) == \
            (2, "record_training", "secretary", "trained")
        assert [d["code"] for d in world.store.cases.documents(case_id)] == ["CN-NTVĐ"]
        assert world.store.cases.load(case_id).state == "trained"
    report = verify(world.store.db, workers=1)
    assert report.ok, report.breaks
    assert report.events == world.store.cases.count_events()


def test_one_refused_move_writes_nothing_and_names_its_case(world: World) -> None:
    on = world.ago(months=1)
    case_ids = [world.open_case(on=world.ago(months=2)) for _ in range(3)]
    stale_certificate = (on - timedelta(days=6 * 366)).isoformat()
    batch = [request(world, case_ids[0], "record_training", on),
             request(world, case_ids[1], "record_training", on, certificate_date=stale_certificate),
             request(world, case_ids[2], "record_training", on)]
    before = record(world, case_ids)

    with pytest.raises(MoveRefused) as refused:
        world.service.advance_many("secretary", batch)

    assert str(refused.value).startswith(f"case {case_ids[1]}: move record_training is refused")
    assert refused.value.reasons and "certificate" in refused.value.reasons[0]
    assert record(world, case_ids) == before
    assert verify(world.store.db, workers=1).ok


def test_refusal_keeps_its_type(world: World) -> None:
    """A move the actor may not make is NotPermitted in a batch too, as with ``advance``."""
    case_id = world.open_case(on=world.ago(months=2))
    world.step(case_id, "record_training", world.ago(months=1, days=20))
    world.step(case_id, "prepare_dossier", world.ago(months=1, days=10))
    other = world.open_case(on=world.ago(months=2))
    before = record(world, [case_id, other])
    assert ACTING["verify_background"] != "secretary"

    with pytest.raises(NotPermitted, match=rf"^case {case_id}: you hold no role"):
        world.service.advance_many("secretary", [
            request(world, other, "record_training", world.ago(months=1)),
            request(world, case_id, "verify_background", world.ago(months=1))])

    assert record(world, [case_id, other]) == before


def test_same_case_twice_advances_twice_in_order(world: World) -> None:
    case_id = world.open_case(on=world.ago(months=2))
    first, second = world.ago(months=1, days=10), world.ago(months=1)
    batch = [request(world, case_id, "record_training", first),
             request(world, case_id, "prepare_dossier", second, from_state="trained")]

    recorded = world.service.advance_many("secretary", batch)

    assert [(r.seq, r.move.from_state, r.move.to_state) for r in recorded] == \
        [(2, "candidate", "trained"), (3, "trained", "dossier_prepared")]
    history = world.store.cases.history(case_id)
    assert [(e["seq"], e["trigger"]) for e in history] == \
        [(1, "open"), (2, "record_training"), (3, "prepare_dossier")]
    assert history[2]["prev_hash"] == history[1]["hash"]
    case = world.store.cases.load(case_id)
    assert (case.state, case.seq, case.head_hash) == ("dossier_prepared", 3, history[2]["hash"])
    assert verify(world.store.db, workers=1).ok


def test_empty_batch_writes_nothing(world: World) -> None:
    events = world.store.cases.count_events()
    assert world.service.advance_many("secretary", []) == []
    assert world.store.cases.count_events() == events
