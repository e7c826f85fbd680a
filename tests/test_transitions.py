"""Every transition of definitions/membership.yaml: one passing move, each guard failing, each
required document missing, and the general refusals (wrong state, unknown move, wrong role,
bad business date, unknown document, second extension). A refused move must leave no trace:
case row, audit chain and documents are compared before and after. A move's inputs live in its
audit event; the case's facts hold only what a move ``records`` plus bookkeeping (state entered,
documents on file, met:/extended: dates of deadlines)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from conftest import ACTING, ADMISSION_PATH, MEMBERSHIP, RECOGNITION_PATH, World
from memberflow.errors import AlreadyMoved, BadInput, DefinitionInvalid, MoveRefused, NotPermitted
from memberflow.workflow.dates import add_months, format_date
from memberflow.workflow.deadlines import extension_fact, met_fact, open_deadlines
from memberflow.workflow.engine import DOCUMENTS_FACT, CaseView, Engine, MoveRequest, made_by_fact
from memberflow.workflow.guards import REGISTRY, GuardContext
from memberflow.workflow.loader import STATE_ENTERED, load_definition, parse_definition
from memberflow.workflow.workdays import default_calendar

PATH = ADMISSION_PATH + RECOGNITION_PATH
# Number of PATH steps that bring a freshly opened case into each state.
REACHED_BY = {
    "candidate": 0, "trained": 1, "dossier_prepared": 2, "background_verified": 3,
    "branch_voted": 4, "committee_voted": 5, "admission_decided": 6, "probationary": 7,
    "probation_completed": 8, "recognition_branch_voted": 9, "recognition_committee_voted": 10,
    "official_member": 11,
}
PATH_STATES = list(REACHED_BY)
APPLICATION_STATES = ["candidate", "trained", "dossier_prepared", "background_verified",
                      "branch_voted", "committee_voted"]
MEMBER_STATES = ["probationary", "probation_completed", "recognition_branch_voted",
                 "recognition_committee_voted", "official_member"]
REGISTER_INPUTS = {"admission_date": "2004-03-26", "official_since": "2005-03-26",
                   "party_card_number": "52.001234"}
FAILED_VOTE = {"votes_for": 5, "votes_eligible": 9}
# Inputs for moves that conftest's STANDARD_INPUTS does not cover.
EXTRA_INPUTS: dict[str, dict[str, Any]] = {
    "register_existing_member": REGISTER_INPUTS,
    "record_failed_branch_vote": FAILED_VOTE,
    "record_failed_recognition_vote": FAILED_VOTE,
    "propose_removal": {"ground": "absence_or_unpaid_dues", "reason": "vắng sinh hoạt 4 tháng"},
    "dismiss_removal_proposal": {"reason": "có lý do chính đáng"},
}
FAILED_VOTES = [("record_failed_branch_vote", "background_verified", "6-KNĐ"),
                ("record_failed_recognition_vote", "probation_completed", "13-KNĐ")]
D = format_date


# ---- building cases on known dates -------------------------------------------------------

def start_of(world: World) -> date:
    """Cases open on the 1st of the month 20 months ago."""
    return add_months(world.today.replace(day=1), -20)


def step_date(world: World, index: int) -> date:
    """Date of PATH[index]: admission moves 10 days apart, recognition moves 5 days apart
    starting exactly 12 months after the ceremony."""
    start = start_of(world)
    if index < len(ADMISSION_PATH):
        return start + timedelta(days=10 * index)
    ceremony = start + timedelta(days=10 * (len(ADMISSION_PATH) - 1))
    return add_months(ceremony, 12) + timedelta(days=5 * (index - len(ADMISSION_PATH)))


def ceremony_of(world: World) -> date:
    return step_date(world, len(ADMISSION_PATH) - 1)


def entered_on(world: World, state: str) -> date:
    steps = REACHED_BY[state]
    return step_date(world, steps - 1) if steps else start_of(world)


def move_date(world: World, state: str) -> date:
    """A safe business date for a move out of ``state``: the next 15th after it was entered."""
    entered = entered_on(world, state)
    day = entered.replace(day=15)
    return day if day > entered else add_months(day, 1)


def case_in(world: World, state: str, person: int | None = None,
            overrides: dict[str, dict[str, Any]] | None = None) -> int:
    """Open a case and walk it along the main path into ``state``."""
    overrides = overrides or {}
    case_id = world.open_case(person, on=start_of(world))
    for index, trigger in enumerate(PATH[:REACHED_BY[state]]):
        extra = {"inputs": overrides[trigger]} if trigger in overrides else {}
        world.step(case_id, trigger, step_date(world, index), **extra)
    record = world.store.cases.load(case_id)
    assert record.state == state
    assert record.facts[STATE_ENTERED] == entered_on(world, state).isoformat()
    return case_id


def step(world: World, case_id: int, trigger: str, on: date, **overrides: Any) -> Any:
    """``world.step``, also for the moves conftest's ACTING and STANDARD_INPUTS do not list."""
    if trigger in ACTING and trigger not in EXTRA_INPUTS:
        return world.step(case_id, trigger, on, **overrides)
    inputs = overrides.pop("inputs", None)
    documents = overrides.pop("documents", None)
    actor = overrides.pop("actor", ACTING.get(trigger, "secretary"))
    return world.service.advance(
        actor, case_id, trigger, on, dict(EXTRA_INPUTS[trigger]) if inputs is None else inputs,
        world.documents_for(case_id, trigger) if documents is None else documents, **overrides)


def snapshot(world: World, case_id: int) -> dict[str, Any]:
    record = world.store.cases.load(case_id)
    return {"state": record.state, "version": record.version, "seq": record.seq,
            "head_hash": record.head_hash, "facts": record.facts, "due_on": record.due_on,
            "due_move": record.due_move, "history": world.store.cases.history(case_id),
            "documents": world.store.cases.documents(case_id)}


def refuse(world: World, case_id: int, trigger: str, on: date, error: type[Exception] = MoveRefused,
           **overrides: Any) -> Any:
    """Make a move that must be refused; check nothing at all was written."""
    return refused_without_trace(world, case_id, error,
                                 lambda: step(world, case_id, trigger, on, **overrides))


def refused_without_trace(world: World, case_id: int, error: type[Exception],
                          attempt: Callable[[], Any]) -> Any:
    before = snapshot(world, case_id)
    with pytest.raises(error) as info:
        attempt()
    after = snapshot(world, case_id)
    assert after == before
    assert len(after["history"]) == before["seq"]
    assert [d for d in after["documents"] if d["seq"] > before["seq"]] == []
    return info.value


def reasons(world: World, case_id: int, trigger: str, on: date, **overrides: Any) -> list[str]:
    refused = refuse(world, case_id, trigger, on, **overrides)
    assert refused.summary == f"move {trigger} is refused"
    return refused.reasons


def docs(*codes: str) -> dict[str, str]:
    return {code: f"{code}-ref" for code in codes}


def last_inputs(world: World, case_id: int) -> dict[str, Any]:
    """The inputs of the case's latest move, as stored in its audit event."""
    return json.loads(world.store.cases.history(case_id)[-1]["payload"])["inputs"]


# ---- 1. every transition, from every source state, passes --------------------------------

PASSES: list[tuple[str, str, str, str, str]] = [
    ("record_training", "candidate", "trained", "secretary", "branch_secretary"),
    *[("renew_training", s, s, "secretary", "branch_secretary")
      for s in ("trained", "dossier_prepared", "background_verified")],
    ("prepare_dossier", "trained", "dossier_prepared", "secretary", "branch_secretary"),
    ("verify_background", "dossier_prepared", "background_verified", "committee",
     "grassroots_committee"),
    ("record_branch_vote", "background_verified", "branch_voted", "secretary", "branch_secretary"),
    ("record_committee_vote", "branch_voted", "committee_voted", "committee", "grassroots_committee"),
    ("decide_admission", "committee_voted", "admission_decided", "standing",
     "standing_committee_above"),
    ("extend_admission_deadline", "committee_voted", "committee_voted", "standing",
     "standing_committee_above"),
    ("hold_ceremony", "admission_decided", "probationary", "secretary", "branch_secretary"),
    # Before the branch vote the branch may refuse; after it the grassroots committee; once
    # the grassroots committee voted, only the standing committee above.
    *[("reject_application", s, "rejected", "secretary", "branch_secretary")
      for s in APPLICATION_STATES[:4]],
    ("reject_application", "background_verified", "rejected", "committee", "grassroots_committee"),
    ("reject_application", "branch_voted", "rejected", "committee", "grassroots_committee"),
    ("reject_application", "committee_voted", "rejected", "standing", "standing_committee_above"),
    ("record_failed_branch_vote", "background_verified", "background_verified", "secretary",
     "branch_secretary"),
    ("record_failed_recognition_vote", "probation_completed", "probation_completed", "secretary",
     "branch_secretary"),
    *[("withdraw_application", s, "application_withdrawn", "secretary", "branch_secretary")
      for s in [*APPLICATION_STATES, "admission_decided"]],
    ("complete_probation", "probationary", "probation_completed", "secretary", "branch_secretary"),
    ("record_recognition_vote", "probation_completed", "recognition_branch_voted", "secretary",
     "branch_secretary"),
    ("record_recognition_committee_vote", "recognition_branch_voted", "recognition_committee_voted",
     "committee", "grassroots_committee"),
    ("recognize_official", "recognition_committee_voted", "official_member", "standing",
     "standing_committee_above"),
    ("extend_recognition_deadline", "recognition_committee_voted", "recognition_committee_voted",
     "standing", "standing_committee_above"),
    ("register_existing_member", "candidate", "official_member", "department",
     "organization_department"),
    *[("propose_removal", s, s, "secretary", "branch_secretary") for s in MEMBER_STATES],
    ("propose_removal", "official_member", "official_member", "department", "organization_department"),
    *[("dismiss_removal_proposal", s, s, "standing", "standing_committee_above") for s in MEMBER_STATES],
    ("dismiss_removal_proposal", "official_member", "official_member", "committee",
     "grassroots_committee"),
    *[("strike_off", s, "struck_off", "standing", "standing_committee_above") for s in MEMBER_STATES],
    ("expel", "official_member", "expelled", "inspector", "inspection_commission"),
    ("expel", "official_member", "expelled", "standing", "standing_committee_above"),
    *[("withdraw_membership", s, "left_party", "standing", "standing_committee_above")
      for s in MEMBER_STATES],
    *[("record_death", s, "deceased", "secretary", "branch_secretary") for s in MEMBER_STATES],
    ("record_death", "official_member", "deceased", "department", "organization_department"),
]

# Facts each move records as its business date.
RECORDS_DATE = {
    "record_branch_vote": "branch_vote_date", "record_committee_vote": "committee_vote_date",
    "decide_admission": "decision_date", "hold_ceremony": "ceremony_date",
    "record_recognition_vote": "recognition_vote_date",
    "recognize_official": "recognition_decision_date", "strike_off": "removal_date",
    "expel": "removal_date", "withdraw_membership": "removal_date", "record_death": "removal_date",
    "record_failed_branch_vote": "failed_vote_date", "record_failed_recognition_vote": "failed_vote_date",
    "propose_removal": "removal_proposed_on", "dismiss_removal_proposal": "removal_dismissed_on",
}


def test_every_transition_and_source_is_covered() -> None:
    definition = load_definition(MEMBERSHIP)
    expected = {(t.trigger, s) for t in definition.transitions for s in t.sources}
    assert {(trigger, source) for trigger, source, *_ in PASSES} == expected
    assert len(definition.triggers()) == 25
    assert len(definition.transitions) == 27


@pytest.mark.parametrize(("trigger", "source", "dest", "actor", "role"), PASSES,
                         ids=[f"{p[0]}-{p[1]}-{p[3]}" for p in PASSES])
def test_move_passes_and_is_audited(world: World, trigger: str, source: str, dest: str,
                                    actor: str, role: str) -> None:
    case_id = case_in(world, source)
    if trigger == "dismiss_removal_proposal":  # only a pending proposal can be dismissed
        step(world, case_id, "propose_removal", move_date(world, source))
    before = world.store.cases.load(case_id)
    history = world.store.cases.history(case_id)
    old_documents = world.store.cases.documents(case_id)
    on = add_months(ceremony_of(world), 12) if trigger == "complete_probation" \
        else move_date(world, source)
    attached = world.documents_for(case_id, trigger)
    extra = {"inputs": dict(EXTRA_INPUTS[trigger])} if trigger in EXTRA_INPUTS else {}
    given = extra["inputs"] if extra else world.inputs_for(trigger, on)

    recorded = step(world, case_id, trigger, on, actor=actor, **extra)

    after = world.store.cases.load(case_id)
    assert after.state == dest
    assert (after.version, after.seq) == (before.version + 1, before.seq + 1)
    assert recorded.seq == after.seq
    assert after.head_hash != before.head_hash
    rows = world.store.cases.history(case_id)
    assert rows[:-1] == history
    new = rows[-1]
    assert (new["seq"], new["kind"], new["trigger"], new["from_state"], new["to_state"]) == \
        (after.seq, "move", trigger, source, dest)
    assert (new["actor"], new["role"], new["business_date"]) == (actor, role, on)
    assert new["prev_hash"] == before.head_hash and new["hash"] == after.head_hash
    new_documents = world.store.cases.documents(case_id)
    assert new_documents[:len(old_documents)] == old_documents
    assert {(d["seq"], d["code"], d["reference"]) for d in new_documents[len(old_documents):]} == \
        {(after.seq, code, ref) for code, ref in attached.items()}
    # The state-entered date moves only when the state changes.
    expected_entered = on if dest != source else entered_on(world, source)
    assert after.facts[STATE_ENTERED] == expected_entered.isoformat()
    if trigger in RECORDS_DATE:
        assert after.facts[RECORDS_DATE[trigger]] == on.isoformat()
    # Inputs go to the audit event; facts change only by what the move records and bookkeeping.
    transition = load_definition(MEMBERSHIP).transition(trigger, source)
    assert set(json.loads(new["payload"])["inputs"]) == set(given)
    bookkeeping = {STATE_ENTERED, DOCUMENTS_FACT, met_fact(trigger), made_by_fact(trigger)}
    if transition.extends_deadline:
        bookkeeping.add(extension_fact(transition.extends_deadline))
    changed = {k for k, v in after.facts.items() if before.facts.get(k, object()) != v}
    assert set(transition.records) <= changed <= set(transition.records) | bookkeeping
    assert set(before.facts) - set(transition.clears) <= set(after.facts)  # only what it clears goes
    assert not set(transition.clears) & set(after.facts)
    assert (met_fact(trigger) in after.facts) == (transition.deadline is not None)
    for name in given:
        assert (name in after.facts) == (name in transition.records), name


def test_hold_ceremony_records_probation_end_twelve_months_later(world: World) -> None:
    case_id = case_in(world, "admission_decided")
    on = move_date(world, "admission_decided")
    world.step(case_id, "hold_ceremony", on)
    facts = world.store.cases.load(case_id).facts
    assert facts["ceremony_date"] == on.isoformat()
    assert facts["probation_end"] == add_months(on, 12).isoformat()
    assert "helper" not in facts
    assert last_inputs(world, case_id) == {"helper": world.members[0]}


def test_register_existing_member_keeps_paper_dates(world: World) -> None:
    case_id = case_in(world, "candidate")
    world.step(case_id, "register_existing_member", move_date(world, "candidate"),
               inputs=dict(REGISTER_INPUTS))
    facts = world.store.cases.load(case_id).facts
    assert (facts["admission_date"], facts["official_since"]) == ("2004-03-26", "2005-03-26")
    assert "party_card_number" not in facts
    assert last_inputs(world, case_id)["party_card_number"] == "52.001234"


# ---- 2. guards failing, transition by transition -----------------------------------------

# record_training / renew_training: certificate_valid (60 months)

@pytest.mark.parametrize("state", ["candidate", "trained", "dossier_prepared", "background_verified"])
def test_certificate_older_than_60_months_is_refused(world: World, state: str) -> None:
    trigger = "record_training" if state == "candidate" else "renew_training"
    case_id = case_in(world, state)
    on = move_date(world, state)
    issued = add_months(on, -60) - timedelta(days=1)
    assert reasons(world, case_id, trigger, on, inputs={"certificate_date": issued.isoformat()}) == [
        f"training certificate of {D(issued)} is 5 years old on {D(on)}; it is valid for 60 months "
        f"(expired {D(add_months(issued, 60))}) — the course must be retaken"]


@pytest.mark.parametrize("state", ["candidate", "trained"])
def test_certificate_exactly_60_months_old_passes(world: World, state: str) -> None:
    trigger = "record_training" if state == "candidate" else "renew_training"
    case_id = case_in(world, state)
    on = move_date(world, state)
    issued = add_months(on, -60)
    world.step(case_id, trigger, on, inputs={"certificate_date": issued.isoformat()})
    record = world.store.cases.load(case_id)
    assert record.state == "trained"
    assert record.facts["certificate_date"] == issued.isoformat()


def test_certificate_dated_after_the_move_is_refused(world: World) -> None:
    case_id = case_in(world, "candidate")
    on = move_date(world, "candidate")
    issued = on + timedelta(days=1)
    assert reasons(world, case_id, "record_training", on,
                   inputs={"certificate_date": issued.isoformat()}) == [
        f"training certificate is dated {D(issued)}, after the move's date"]


def test_renewed_certificate_replaces_the_expired_one_for_the_branch_vote(world: World) -> None:
    vote_on = move_date(world, "background_verified")
    old = add_months(vote_on, -60) - timedelta(days=1)  # valid when recorded, expired at the vote
    case_id = case_in(world, "background_verified",
                      overrides={"record_training": {"certificate_date": old.isoformat()}})
    assert reasons(world, case_id, "record_branch_vote", vote_on) == [
        f"training certificate of {D(old)} is 5 years old on {D(vote_on)}; it is valid for 60 months "
        f"(expired {D(add_months(old, 60))}) — the course must be retaken"]
    renewed = vote_on - timedelta(days=3)
    world.step(case_id, "renew_training", vote_on, inputs={"certificate_date": renewed.isoformat()})
    world.step(case_id, "record_branch_vote", vote_on)
    record = world.store.cases.load(case_id)
    assert record.state == "branch_voted"
    assert record.facts["certificate_date"] == renewed.isoformat()


def test_renew_training_needs_the_new_certificate(world: World) -> None:
    case_id = case_in(world, "dossier_prepared")
    on = move_date(world, "dossier_prepared")
    assert reasons(world, case_id, "renew_training", on, documents={}) == [
        "document CN-NTVĐ must be attached with this move"]


# prepare_dossier: education_at_least (lower_secondary) and introducers (2, 12 months)

@pytest.mark.parametrize(("education", "passes"), [
    ("primary", False), ("lower_secondary", True), ("upper_secondary", True)])
def test_prepare_dossier_education(world: World, education: str, passes: bool) -> None:
    case_id = case_in(world, "trained", person=world.add_person("Lò Văn Páo", education=education))
    on = move_date(world, "trained")
    if passes:
        world.step(case_id, "prepare_dossier", on)
        assert world.store.cases.load(case_id).state == "dossier_prepared"
    else:
        assert reasons(world, case_id, "prepare_dossier", on) == [
            "applicant's education is primary; at least lower_secondary required"]


def introducer_case(world: World, **fields: Any) -> tuple[int, int, date]:
    applicant = world.add_person("Trần Minh Khôi", **fields)
    return case_in(world, "trained", person=applicant), applicant, move_date(world, "trained")


def test_introducer_who_is_not_a_member_is_refused(world: World) -> None:
    case_id, _, on = introducer_case(world)
    outsider = world.add_person("Phạm Văn Ngoài")
    assert reasons(world, case_id, "prepare_dossier", on,
                   inputs={"introducers": f"{world.members[0]}:24,{outsider}:36"}) == [
        f"introducer Phạm Văn Ngoài (#{outsider}) is not an official member on {D(on)}",
        "2 qualifying official-member introducer(s) needed; 1 given"]


def test_introducer_who_is_only_probationary_is_refused(world: World) -> None:
    probationary, _ = world.admitted_case(10)
    helper = world.store.cases.load(probationary).person_id
    case_id, _, on = introducer_case(world)
    assert reasons(world, case_id, "prepare_dossier", on,
                   inputs={"introducers": f"{world.members[0]}:24,{helper}:36"}) == [
        f"introducer Nguyễn Thị Hoa (#{helper}) is not an official member on {D(on)}",
        "2 qualifying official-member introducer(s) needed; 1 given"]


def test_introducer_must_be_official_on_the_move_date(world: World) -> None:
    recent = world.official_case()
    introducer = world.store.cases.load(recent).person_id
    since = date.fromisoformat(world.store.cases.load(recent).facts["official_since"])
    case_id, _, _ = introducer_case(world)
    assert since > entered_on(world, "trained")
    day_before = since - timedelta(days=1)
    names = {"introducers": f"{world.members[0]}:24,{introducer}:14"}
    assert reasons(world, case_id, "prepare_dossier", day_before, inputs=names) == [
        f"introducer Nguyễn Thị Hoa (#{introducer}) is not an official member on {D(day_before)}",
        "2 qualifying official-member introducer(s) needed; 1 given"]
    world.step(case_id, "prepare_dossier", since, inputs=names)
    assert world.store.cases.load(case_id).state == "dossier_prepared"


@pytest.mark.parametrize(("months", "passes"), [(11, False), (12, True)])
def test_introducer_months_together(world: World, months: int, passes: bool) -> None:
    case_id, _, on = introducer_case(world)
    one, two = world.members
    names = {"introducers": f"{one}:{months},{two}:36"}
    if passes:
        world.step(case_id, "prepare_dossier", on, inputs=names)
        assert world.store.cases.load(case_id).state == "dossier_prepared"
        return
    assert reasons(world, case_id, "prepare_dossier", on, inputs=names) == [
        f"introducer Đảng viên Một (#{one}) has worked or lived with the applicant for 11 months; "
        "at least 12 required",
        "2 qualifying official-member introducer(s) needed; 1 given"]


def test_too_few_introducers(world: World) -> None:
    case_id, _, on = introducer_case(world)
    assert reasons(world, case_id, "prepare_dossier", on,
                   inputs={"introducers": f"{world.members[0]}:24"}) == [
        "2 qualifying official-member introducer(s) needed; 1 given"]


def test_introducer_named_twice(world: World) -> None:
    case_id, _, on = introducer_case(world)
    one = world.members[0]
    assert reasons(world, case_id, "prepare_dossier", on,
                   inputs={"introducers": f"{one}:24,{one}:30"}) == [
        f"introducer Đảng viên Một (#{one}) is named twice",
        "2 qualifying official-member introducer(s) needed; 1 given"]


def test_applicant_cannot_introduce_themselves(world: World) -> None:
    case_id, applicant, on = introducer_case(world)
    assert reasons(world, case_id, "prepare_dossier", on,
                   inputs={"introducers": f"{world.members[0]}:24,{applicant}:300"}) == [
        f"introducer Trần Minh Khôi (#{applicant}) is the applicant",
        "2 qualifying official-member introducer(s) needed; 1 given"]


def test_youth_union_introduces_only_its_own_members(world: World) -> None:
    case_id, _, on = introducer_case(world, youth_union=False)
    assert reasons(world, case_id, "prepare_dossier", on, inputs={
        "introducers": f"{world.members[0]}:24", "organization_introducer": "youth_union"}) == [
        "the Youth Union may introduce only an applicant who is a member of it",
        "2 qualifying official-member introducer(s) needed; 1 given"]


@pytest.mark.parametrize("organization", ["youth_union", "trade_union"])
def test_organization_plus_one_member_introducer_passes(world: World, organization: str) -> None:
    case_id, _, on = introducer_case(world, youth_union=True, trade_union=True)
    world.step(case_id, "prepare_dossier", on, inputs={
        "introducers": f"{world.members[0]}:24", "organization_introducer": organization})
    record = world.store.cases.load(case_id)
    assert record.state == "dossier_prepared"
    assert "organization_introducer" not in record.facts
    assert last_inputs(world, case_id)["organization_introducer"] == organization


def test_organization_still_needs_one_member_introducer(world: World) -> None:
    case_id, _, on = introducer_case(world, trade_union=True)
    assert reasons(world, case_id, "prepare_dossier", on, inputs={
        "introducers": f"{world.members[0]}:5", "organization_introducer": "trade_union"}) == [
        f"introducer Đảng viên Một (#{world.members[0]}) has worked or lived with the applicant "
        "for 5 months; at least 12 required",
        "1 qualifying official-member introducer(s) needed besides the trade union; 0 given"]


def test_trade_union_introduces_only_its_own_members(world: World) -> None:
    case_id, _, on = introducer_case(world, trade_union=False)
    refused = reasons(world, case_id, "prepare_dossier", on, inputs={
        "introducers": f"{world.members[0]}:24", "organization_introducer": "trade_union"})
    assert any("trade union" in reason and "member" in reason for reason in refused)


def test_verify_background_needs_the_stamped_cv_even_if_one_is_on_file(world: World) -> None:
    # prepare_dossier filed the CV; the committee's stamped CV is a new document of this move.
    case_id = case_in(world, "dossier_prepared")
    assert "2-KNĐ" in world.store.cases.load(case_id).facts[DOCUMENTS_FACT]
    assert reasons(world, case_id, "verify_background", move_date(world, "dossier_prepared"),
                   documents={}) == ["document 2-KNĐ must be attached with this move"]


# record_branch_vote: age_between (18..60, TU-DY), certificate_valid, vote 2/3

def applicant_aged(world: World, months: int, days: int = 0) -> tuple[int, date]:
    """A case in background_verified whose applicant is ``months`` (+``days``) old on vote day."""
    on = move_date(world, "background_verified")
    born = add_months(on, -months) - timedelta(days=days)
    case_id = case_in(world, "background_verified", person=world.add_person("Võ Quang Huy", born))
    return case_id, on


@pytest.mark.parametrize(("months", "days", "described"), [
    (18 * 12 - 1, 0, "17 years 11 months"),
    (18 * 12, -1, "17 years 11 months"),  # one day short of the 18th birthday
])
def test_branch_vote_refuses_applicant_under_18(world: World, months: int, days: int,
                                                described: str) -> None:
    case_id, on = applicant_aged(world, months, days)
    assert reasons(world, case_id, "record_branch_vote", on) == [
        f"applicant is {described} old on {D(on)}; must be at least 18"]


@pytest.mark.parametrize(("months", "documents"), [
    (18 * 12, ("5-KNĐ", "6-KNĐ")),
    (60 * 12, ("5-KNĐ", "6-KNĐ")),
    (60 * 12 + 1, ("5-KNĐ", "6-KNĐ", "TU-DY")),
])
def test_branch_vote_age_boundaries_pass(world: World, months: int, documents: tuple[str, ...]) -> None:
    case_id, on = applicant_aged(world, months)
    world.step(case_id, "record_branch_vote", on, documents=docs(*documents))
    assert world.store.cases.load(case_id).state == "branch_voted"
    assert {d["code"] for d in world.store.cases.documents(case_id) if d["seq"] == 5} == set(documents)


def test_branch_vote_refuses_applicant_over_60_without_consent(world: World) -> None:
    case_id, on = applicant_aged(world, 60 * 12 + 1)
    assert reasons(world, case_id, "record_branch_vote", on) == [
        f"applicant is 60 years 1 month old on {D(on)}; must be at most 60 unless document TU-DY "
        "(written consent) is attached"]


VOTE_MOVES = [
    ("record_branch_vote", "background_verified", "chi bộ"),
    ("record_committee_vote", "branch_voted", "đảng ủy cơ sở"),
    ("record_recognition_vote", "probation_completed", "chi bộ"),
    ("record_recognition_committee_vote", "recognition_branch_voted", "đảng ủy cơ sở"),
]
NEXT_STATE = {state: PATH_STATES[i + 1] for i, state in enumerate(PATH_STATES[:-1])}


@pytest.mark.parametrize(("trigger", "state", "body"), VOTE_MOVES)
@pytest.mark.parametrize(("votes_for", "eligible", "expected"), [
    (5, 9, "{body} vote: 5 of 9 eligible is not at least 2/3 (at least 6 needed)"),
    (1, 2, "{body} vote: 1 of 2 eligible is not at least 2/3 (at least 2 needed)"),
])
def test_vote_below_two_thirds_is_refused(world: World, trigger: str, state: str, body: str,
                                          votes_for: int, eligible: int, expected: str) -> None:
    case_id = case_in(world, state)
    assert reasons(world, case_id, trigger, move_date(world, state),
                   inputs={"votes_for": votes_for, "votes_eligible": eligible}) == [
        expected.format(body=body)]


@pytest.mark.parametrize(("trigger", "state", "body"), VOTE_MOVES)
@pytest.mark.parametrize(("votes_for", "eligible"), [(6, 9), (2, 3), (9, 9)])
def test_vote_of_two_thirds_passes(world: World, trigger: str, state: str, body: str,
                                   votes_for: int, eligible: int) -> None:
    case_id = case_in(world, state)
    on = move_date(world, state)
    world.step(case_id, trigger, on, inputs={"votes_for": votes_for, "votes_eligible": eligible})
    record = world.store.cases.load(case_id)
    assert record.state == NEXT_STATE[state]
    assert last_inputs(world, case_id) == {"votes_for": votes_for, "votes_eligible": eligible}
    assert "votes_for" not in record.facts and "votes_eligible" not in record.facts


def test_recognition_vote_before_twelve_months_is_refused_by_the_engine() -> None:
    # Unreachable through Service (complete_probation already waits 12 months and business
    # dates cannot go back before the state was entered), so it is checked on the engine.
    definition = load_definition(MEMBERSHIP)
    ceremony = date(2025, 4, 30)
    on = date(2026, 4, 29)
    case = CaseView("probation_completed", {STATE_ENTERED: "2026-04-01",
                                            "ceremony_date": ceremony.isoformat()})
    request = MoveRequest("record_recognition_vote", frozenset({"branch_secretary"}), on,
                          {"votes_for": 6, "votes_eligible": 9},
                          docs("10-KNĐ", "11-KNĐ", "12-KNĐ", "13-KNĐ"))
    with pytest.raises(MoveRefused) as info:
        Engine().plan(definition, case, request, today=date(2026, 11, 28))
    assert info.value.reasons == [
        "only 11 months since ceremony_date 30/04/2025; 12 months must pass "
        "(not before 30/04/2026)"]
    passed = Engine().plan(definition, case, MoveRequest(
        request.trigger, request.roles_held, date(2026, 4, 30), request.inputs, request.documents),
        today=date(2026, 11, 28))
    assert passed.to_state == "recognition_branch_voted"


# hold_ceremony: official_member (helper)

def test_helper_who_is_not_a_member_is_refused(world: World) -> None:
    case_id = case_in(world, "admission_decided")
    on = move_date(world, "admission_decided")
    stranger = world.add_person("Đinh Công Tráng")
    assert reasons(world, case_id, "hold_ceremony", on, inputs={"helper": stranger}) == [
        f"helper Đinh Công Tráng (#{stranger}) is not an official member on {D(on)}"]


def test_probationary_member_cannot_be_helper(world: World) -> None:
    other, _ = world.admitted_case(10)
    helper = world.store.cases.load(other).person_id
    case_id = case_in(world, "admission_decided", person=world.add_person("Lê Thị Mỹ Duyên"))
    on = move_date(world, "admission_decided")
    assert reasons(world, case_id, "hold_ceremony", on, inputs={"helper": helper}) == [
        f"helper Nguyễn Thị Hoa (#{helper}) is not an official member on {D(on)}"]


def test_unknown_person_cannot_be_helper(world: World) -> None:
    case_id = case_in(world, "admission_decided")
    on = move_date(world, "admission_decided")
    assert reasons(world, case_id, "hold_ceremony", on, inputs={"helper": 99999}) == [
        f"helper unknown person (#99999) is not an official member on {D(on)}"]


# complete_probation: months_elapsed (12 months since the ceremony)

def test_probation_cannot_complete_before_twelve_months(world: World) -> None:
    case_id = case_in(world, "probationary")
    ceremony = ceremony_of(world)
    on = add_months(ceremony, 12) - timedelta(days=1)
    assert reasons(world, case_id, "complete_probation", on) == [
        f"only 11 months since ceremony_date {D(ceremony)}; 12 months must pass "
        f"(not before {D(add_months(ceremony, 12))})"]


def test_probation_completes_on_the_twelve_month_anniversary(world: World) -> None:
    case_id = case_in(world, "probationary")
    on = add_months(ceremony_of(world), 12)
    world.step(case_id, "complete_probation", on)
    record = world.store.cases.load(case_id)
    assert record.state == "probation_completed"
    assert record.facts[STATE_ENTERED] == on.isoformat()


# strike_off: chi bộ ≥ 2/3, đảng ủy cơ sở ≥ 2/3, ban thường vụ > 1/2

@pytest.mark.parametrize(("votes", "expected"), [
    ({"branch_votes_for": 5, "branch_votes_eligible": 9},
     ["chi bộ vote: 5 of 9 eligible is not at least 2/3 (at least 6 needed)"]),
    ({"committee_votes_for": 5, "committee_votes_eligible": 9},
     ["đảng ủy cơ sở vote: 5 of 9 eligible is not at least 2/3 (at least 6 needed)"]),
    ({"standing_votes_for": 3, "standing_votes_eligible": 6},
     ["ban thường vụ vote: 3 of 6 eligible is not more than 1/2 (at least 4 needed)"]),
    ({"branch_votes_for": 1, "branch_votes_eligible": 3, "committee_votes_for": 2,
      "committee_votes_eligible": 4, "standing_votes_for": 1, "standing_votes_eligible": 2},
     ["chi bộ vote: 1 of 3 eligible is not at least 2/3 (at least 2 needed)",
      "đảng ủy cơ sở vote: 2 of 4 eligible is not at least 2/3 (at least 3 needed)",
      "ban thường vụ vote: 1 of 2 eligible is not more than 1/2 (at least 2 needed)"]),
])
def test_strike_off_vote_thresholds_refuse(world: World, votes: dict[str, int],
                                           expected: list[str]) -> None:
    case_id = case_in(world, "official_member")
    inputs = {**world.inputs_for("strike_off", world.today), **votes}
    assert reasons(world, case_id, "strike_off", move_date(world, "official_member"),
                   inputs=inputs) == expected


@pytest.mark.parametrize("votes", [
    {"standing_votes_for": 4, "standing_votes_eligible": 7},
    {"standing_votes_for": 4, "standing_votes_eligible": 6},
    {"branch_votes_for": 6, "branch_votes_eligible": 9, "committee_votes_for": 2,
     "committee_votes_eligible": 3},
])
def test_strike_off_vote_thresholds_pass(world: World, votes: dict[str, int]) -> None:
    case_id = case_in(world, "official_member")
    on = move_date(world, "official_member")
    world.step(case_id, "strike_off", on, inputs={**world.inputs_for("strike_off", on), **votes})
    record = world.store.cases.load(case_id)
    assert record.state == "struck_off"
    assert record.facts["removal_date"] == on.isoformat()


# withdraw_membership: not_in_violation

@pytest.mark.parametrize("state", ["probationary", "official_member"])
def test_withdrawal_refused_while_under_discipline(world: World, state: str) -> None:
    case_id = case_in(world, state)
    inputs = {**world.inputs_for("withdraw_membership", world.today), "under_discipline": "yes"}
    assert reasons(world, case_id, "withdraw_membership", move_date(world, state), inputs=inputs) == [
        "the member is under disciplinary review; discipline must be settled first"]


# record_failed_branch_vote / record_failed_recognition_vote: vote_ratio_below (2/3)

@pytest.mark.parametrize(("trigger", "state", "code"), FAILED_VOTES)
@pytest.mark.parametrize(("votes_for", "eligible"), [(5, 9), (1, 2), (0, 3), (3, 5)])
def test_failed_vote_is_recorded_and_the_case_stays(world: World, trigger: str, state: str, code: str,
                                                    votes_for: int, eligible: int) -> None:
    case_id = case_in(world, state)
    before = world.store.cases.load(case_id)
    on = move_date(world, state)
    step(world, case_id, trigger, on, inputs={"votes_for": votes_for, "votes_eligible": eligible})
    after = world.store.cases.load(case_id)
    assert after.state == state
    assert after.facts["failed_vote_date"] == on.isoformat()
    assert after.facts[STATE_ENTERED] == before.facts[STATE_ENTERED]
    assert "votes_for" not in after.facts and "votes_eligible" not in after.facts
    assert last_inputs(world, case_id) == {"votes_for": votes_for, "votes_eligible": eligible}
    assert [d["code"] for d in world.store.cases.documents(case_id) if d["seq"] == after.seq] == [code]
    # A failed vote stops no clock: whatever was due is still due.
    assert (after.due_on, after.due_move) == (before.due_on, before.due_move)


@pytest.mark.parametrize(("trigger", "state", "code"), FAILED_VOTES)
@pytest.mark.parametrize(("votes_for", "eligible", "expected"), [
    (6, 9, "chi bộ vote: 6 of 9 eligible reaches 2/3; record it as a passed vote"),
    (2, 3, "chi bộ vote: 2 of 3 eligible reaches 2/3; record it as a passed vote"),
    (4, 5, "chi bộ vote: 4 of 5 eligible reaches 2/3; record it as a passed vote"),
    (9, 9, "chi bộ vote: 9 of 9 eligible reaches 2/3; record it as a passed vote"),
])
def test_failed_vote_that_reached_two_thirds_is_refused(world: World, trigger: str, state: str,
                                                        code: str, votes_for: int, eligible: int,
                                                        expected: str) -> None:
    case_id = case_in(world, state)
    assert reasons(world, case_id, trigger, move_date(world, state),
                   inputs={"votes_for": votes_for, "votes_eligible": eligible}) == [expected]


def test_branch_may_vote_again_after_a_failed_vote(world: World) -> None:
    case_id = case_in(world, "background_verified")
    on = move_date(world, "background_verified")
    step(world, case_id, "record_failed_branch_vote", on)
    world.step(case_id, "record_branch_vote", on + timedelta(days=7))
    record = world.store.cases.load(case_id)
    assert record.state == "branch_voted"
    assert record.facts["failed_vote_date"] == on.isoformat()
    assert record.facts["branch_vote_date"] == (on + timedelta(days=7)).isoformat()


def test_a_vote_is_either_passed_or_failed_never_both() -> None:
    params = {"votes_for": "votes_for", "votes_eligible": "votes_eligible", "ratio": "2/3",
              "body": "chi bộ"}
    for eligible in range(1, 31):
        for votes_for in range(eligible + 1):
            context = GuardContext(date(2026, 1, 5), {"votes_for": votes_for, "votes_eligible": eligible},
                                   {}, {})
            passed = REGISTRY["vote_ratio_at_least"].check(context, params) == []
            failed = REGISTRY["vote_ratio_below"].check(context, params) == []
            assert passed != failed, (votes_for, eligible)
            assert passed == (3 * votes_for >= 2 * eligible), (votes_for, eligible)


# register_existing_member: dates_in_order and months_elapsed from admission to official_since

def register_inputs(admission: date, official: date) -> dict[str, str]:
    return {**REGISTER_INPUTS, "admission_date": admission.isoformat(),
            "official_since": official.isoformat()}


@pytest.mark.parametrize(("admission", "official"), [
    ("2004-03-26", "2005-03-26"),
    ("2004-02-29", "2005-02-28"),  # 12 months after a leap day end on the last day of February
    ("2004-03-26", "2019-09-02"),
])
def test_register_existing_member_with_paper_dates_in_order_passes(world: World, admission: str,
                                                                   official: str) -> None:
    case_id = case_in(world, "candidate")
    step(world, case_id, "register_existing_member", move_date(world, "candidate"),
         inputs=register_inputs(date.fromisoformat(admission), date.fromisoformat(official)))
    record = world.store.cases.load(case_id)
    assert record.state == "official_member"
    assert (record.facts["admission_date"], record.facts["official_since"]) == (admission, official)


def test_register_existing_member_official_on_the_day_it_is_registered_passes(world: World) -> None:
    case_id = case_in(world, "candidate")
    on = move_date(world, "candidate")
    step(world, case_id, "register_existing_member", on,
         inputs=register_inputs(add_months(on, -12), on))
    assert world.store.cases.load(case_id).facts["official_since"] == on.isoformat()


def test_register_existing_member_official_before_admission_is_refused(world: World) -> None:
    case_id = case_in(world, "candidate")
    admission, official = date(2005, 3, 26), date(2004, 3, 26)
    assert reasons(world, case_id, "register_existing_member", move_date(world, "candidate"),
                   inputs=register_inputs(admission, official)) == [
        "official_since 26/03/2004 is before admission_date 26/03/2005",
        "only 0 months since admission_date 26/03/2005 to official_since 26/03/2004; 12 months must "
        "pass (not before 26/03/2006)"]


@pytest.mark.parametrize(("admission", "official", "elapsed", "earliest"), [
    ("2004-03-27", "2005-03-26", "11 months", "27/03/2005"),
    ("2004-03-26", "2004-03-26", "0 months", "26/03/2005"),
    ("2004-01-31", "2005-01-30", "11 months", "31/01/2005"),
])
def test_register_existing_member_needs_twelve_months_until_official_since(
        world: World, admission: str, official: str, elapsed: str, earliest: str) -> None:
    case_id = case_in(world, "candidate")
    assert reasons(world, case_id, "register_existing_member", move_date(world, "candidate"),
                   inputs=register_inputs(date.fromisoformat(admission),
                                          date.fromisoformat(official))) == [
        f"only {elapsed} since admission_date {D(date.fromisoformat(admission))} to official_since "
        f"{D(date.fromisoformat(official))}; 12 months must pass (not before {earliest})"]


@pytest.mark.parametrize("official_after", [1, 400])
def test_register_existing_member_official_after_the_business_date_is_refused(
        world: World, official_after: int) -> None:
    case_id = case_in(world, "candidate")
    on = move_date(world, "candidate")
    official = on + timedelta(days=official_after)
    assert reasons(world, case_id, "register_existing_member", on,
                   inputs=register_inputs(add_months(official, -12), official)) == [
        f"business_date {D(on)} is before official_since {D(official)}"]


# record_death: dates_in_order (the death cannot be after the move's date)

@pytest.mark.parametrize("state", ["probationary", "official_member"])
def test_death_dated_after_the_business_date_is_refused(world: World, state: str) -> None:
    case_id = case_in(world, state)
    on = move_date(world, state)
    died = on + timedelta(days=1)
    assert reasons(world, case_id, "record_death", on, inputs={"date_of_death": died.isoformat()}) == [
        f"business_date {D(on)} is before date_of_death {D(died)}"]


@pytest.mark.parametrize("days_before", [0, 1, 900])
def test_death_on_or_before_the_business_date_is_recorded(world: World, days_before: int) -> None:
    case_id = case_in(world, "official_member")
    on = move_date(world, "official_member")
    died = on - timedelta(days=days_before)
    world.step(case_id, "record_death", on, inputs={"date_of_death": died.isoformat()})
    record = world.store.cases.load(case_id)
    assert record.state == "deceased"
    assert (record.facts["date_of_death"], record.facts["removal_date"]) == \
        (died.isoformat(), on.isoformat())


# the date guards themselves

MONTHS_ELAPSED = REGISTRY["months_elapsed"].check
DATES_IN_ORDER = REGISTRY["dates_in_order"].check


def test_months_elapsed_counts_to_the_move_date_by_default() -> None:
    facts = {"ceremony_date": "2025-03-15"}
    params = {"since": "ceremony_date", "months": 12}
    assert MONTHS_ELAPSED(GuardContext(date(2026, 3, 14), {}, facts, {}), params) == [
        "only 11 months since ceremony_date 15/03/2025; 12 months must pass (not before 15/03/2026)"]
    assert MONTHS_ELAPSED(GuardContext(date(2026, 3, 15), {}, facts, {}), params) == []
    explicit = {**params, "until": "business_date"}
    assert MONTHS_ELAPSED(GuardContext(date(2026, 3, 14), {}, facts, {}), explicit) == \
        MONTHS_ELAPSED(GuardContext(date(2026, 3, 14), {}, facts, {}), params)


def test_months_elapsed_until_a_date_ignores_the_move_date() -> None:
    params = {"since": "admission_date", "months": 12, "until": "official_since"}
    facts = {"admission_date": "2004-03-26"}
    # Far past the move's date, yet official_since came too early ...
    late = GuardContext(date(2030, 1, 2), {"official_since": "2005-03-25"}, facts, {})
    assert MONTHS_ELAPSED(late, params) == [
        "only 11 months since admission_date 26/03/2004 to official_since 25/03/2005; 12 months must "
        "pass (not before 26/03/2005)"]
    # ... and a move dated before both dates still passes when they are 12 months apart.
    early = GuardContext(date(2004, 1, 1), {"official_since": "2005-03-26"}, facts, {})
    assert MONTHS_ELAPSED(early, params) == []


def test_months_elapsed_until_a_date_not_recorded() -> None:
    params = {"since": "admission_date", "months": 12, "until": "official_since"}
    context = GuardContext(date(2030, 1, 2), {}, {"admission_date": "2004-03-26"}, {})
    assert MONTHS_ELAPSED(context, params) == ["official_since is not recorded"]


def test_dates_in_order_reports_every_pair_out_of_order() -> None:
    params = {"dates": ["admission_date", "official_since", "business_date"]}
    context = GuardContext(date(2020, 1, 1), {"admission_date": "2022-01-01",
                                              "official_since": "2021-01-01"}, {}, {})
    assert DATES_IN_ORDER(context, params) == [
        "official_since 01/01/2021 is before admission_date 01/01/2022",
        "business_date 01/01/2020 is before official_since 01/01/2021"]
    same_day = GuardContext(date(2021, 1, 1), {"admission_date": "2021-01-01",
                                               "official_since": "2021-01-01"}, {}, {})
    assert DATES_IN_ORDER(same_day, params) == []


def test_dates_in_order_reads_recorded_facts_too() -> None:
    params = {"dates": ["ceremony_date", "date_of_death"]}
    context = GuardContext(date(2026, 1, 5), {"date_of_death": "2025-01-01"},
                           {"ceremony_date": "2025-06-01"}, {})
    assert DATES_IN_ORDER(context, params) == [
        "date_of_death 01/01/2025 is before ceremony_date 01/06/2025"]


# ---- 2b. every required document missing, one at a time -----------------------------------

MISSING = [
    ("record_training", "candidate", "CN-NTVĐ"),
    *[("prepare_dossier", "trained", code) for code in ("1-KNĐ", "2-KNĐ", "3-KNĐ")],
    *[("record_branch_vote", "background_verified", code) for code in ("5-KNĐ", "6-KNĐ")],
    ("record_committee_vote", "branch_voted", "8-KNĐ"),
    ("decide_admission", "committee_voted", "9-KNĐ"),
    *[("record_recognition_vote", "probation_completed", code)
      for code in ("10-KNĐ", "11-KNĐ", "12-KNĐ", "13-KNĐ")],
    ("record_recognition_committee_vote", "recognition_branch_voted", "15-KNĐ"),
    ("recognize_official", "recognition_committee_voted", "QĐ-CNCT"),
    *[("strike_off", state, "QĐ-XT") for state in ("probationary", "official_member")],
    ("expel", "official_member", "QĐ-KT"),
    *[("withdraw_membership", state, "ĐƠN-RKĐ") for state in ("probation_completed", "official_member")],
    *FAILED_VOTES,
]


@pytest.mark.parametrize(("trigger", "state", "code"), MISSING)
def test_missing_document_is_refused(world: World, trigger: str, state: str, code: str) -> None:
    case_id = case_in(world, state)
    attached = {c: ref for c, ref in world.documents_for(case_id, trigger).items() if c != code}
    assert code not in attached
    assert reasons(world, case_id, trigger, move_date(world, state), documents=attached) == [
        f"document {code} must be attached with this move"]


@pytest.mark.parametrize(("state", "trigger", "documents", "code"), [
    ("candidate", "record_training", docs("CN-NTVĐ", "CN-NTVD"), "CN-NTVD"),  # ASCII typo of Đ
    ("trained", "reject_application", docs("QĐ-TC"), "QĐ-TC"),  # a move that needs no document
    ("background_verified", "record_branch_vote", docs("5-KNĐ", "6-KNĐ", "7-KNĐ"), "7-KNĐ"),
    ("background_verified", "record_branch_vote", docs("5-KNĐ", "6-KNĐ", "7-KNĐ", "4-KNĐ"), "4-KNĐ"),
])
def test_unknown_document_code_is_bad_input(world: World, state: str, trigger: str,
                                            documents: dict[str, str], code: str) -> None:
    case_id = case_in(world, state)
    error = refuse(world, case_id, trigger, move_date(world, state), BadInput, documents=documents)
    known = ", ".join(load_definition(MEMBERSHIP).documents)
    assert str(error) == f"unknown document code {code!r}; membership knows {known}"


def test_unknown_document_code_is_bad_input_even_when_rules_are_broken(world: World) -> None:
    case_id = case_in(world, "background_verified")
    error = refuse(world, case_id, "record_branch_vote", move_date(world, "background_verified"),
                   BadInput, inputs={"votes_for": 1, "votes_eligible": 9}, documents=docs("6-KND"))
    assert str(error).startswith("unknown document code '6-KND'; membership knows CN-NTVĐ, 1-KNĐ")


def test_every_missing_document_and_broken_rule_is_reported_together(world: World) -> None:
    case_id, on = applicant_aged(world, 17 * 12)
    assert reasons(world, case_id, "record_branch_vote", on, documents={},
                   inputs={"votes_for": 3, "votes_eligible": 9}) == [
        f"applicant is 17 years old on {D(on)}; must be at least 18",
        "chi bộ vote: 3 of 9 eligible is not at least 2/3 (at least 6 needed)",
        "document 5-KNĐ must be attached with this move",
        "document 6-KNĐ must be attached with this move"]


# ---- 3. general refusals ----------------------------------------------------------------

@pytest.mark.parametrize(("trigger", "state", "possible"), [
    ("record_branch_vote", "candidate",
     "record_training, reject_application, withdraw_application, register_existing_member"),
    ("hold_ceremony", "committee_voted",
     "decide_admission, extend_admission_deadline, reject_application, withdraw_application"),
    ("reject_application", "admission_decided", "hold_ceremony, withdraw_application"),
    ("hold_ceremony", "background_verified", "renew_training, record_branch_vote, reject_application, "
     "record_failed_branch_vote, withdraw_application"),
    ("complete_probation", "probation_completed", "record_recognition_vote, "
     "record_failed_recognition_vote, propose_removal, dismiss_removal_proposal, strike_off, "
     "withdraw_membership, record_death"),
    ("record_failed_branch_vote", "branch_voted",
     "record_committee_vote, reject_application, withdraw_application"),
    ("expel", "probationary", "complete_probation, propose_removal, dismiss_removal_proposal, "
     "strike_off, withdraw_membership, record_death"),
    ("register_existing_member", "official_member", "propose_removal, dismiss_removal_proposal, "
     "strike_off, expel, withdraw_membership, record_death"),
])
def test_move_not_possible_from_current_state(world: World, trigger: str, state: str,
                                              possible: str) -> None:
    case_id = case_in(world, state)
    world.service.race_window = timedelta(0)  # a repeat long after the move is a plain refusal
    refused = refuse(world, case_id, trigger, move_date(world, state), inputs={})
    label = load_definition(MEMBERSHIP).states[state].labels.en
    assert refused.summary == (f"move {trigger} is not possible from state {state} ({label}); "
                               f"possible now: {possible}")
    assert refused.reasons == []


def test_expel_refused_for_probationary_member(world: World) -> None:
    case_id, _ = world.admitted_case(10)
    refused = refuse(world, case_id, "expel", world.ago(days=1))
    assert "move expel is not possible from state probationary" in refused.summary
    assert "possible now: complete_probation, propose_removal" in refused.summary


@pytest.mark.parametrize(("first", "state"), [
    ("reject_application", "background_verified"),
    ("withdraw_application", "admission_decided"),
    ("expel", "official_member"),
    ("record_death", "probationary"),
])
def test_nothing_moves_out_of_a_terminal_state(world: World, first: str, state: str) -> None:
    case_id = case_in(world, state)
    on = move_date(world, state)
    world.step(case_id, first, on)
    refused = refuse(world, case_id, "strike_off", on)
    assert refused.summary.endswith("possible now: none")


def test_unknown_trigger_is_bad_input(world: World) -> None:
    case_id = case_in(world, "trained")
    error = refused_without_trace(world, case_id, BadInput, lambda: world.service.advance(
        "secretary", case_id, "promote_to_secretary", move_date(world, "trained"), {}, {}))
    assert str(error).startswith("membership has no move 'promote_to_secretary'; moves: record_training")


@pytest.mark.parametrize(("inputs", "message"), [
    ({"votes_for": 9}, "move record_branch_vote needs input votes_eligible"),
    ({"votes_for": 9, "votes_eligible": 10, "quorum": 7},
     "move record_branch_vote takes no input quorum (inputs: votes_for, votes_eligible)"),
    ({"votes_for": "chín", "votes_eligible": 10}, "input votes_for must be a whole number, not 'chín'"),
    ({"votes_for": -1, "votes_eligible": 10}, "input votes_for must not be negative (got -1)"),
])
def test_malformed_inputs_are_bad_input(world: World, inputs: dict[str, Any], message: str) -> None:
    case_id = case_in(world, "background_verified")
    error = refuse(world, case_id, "record_branch_vote", move_date(world, "background_verified"),
                   BadInput, inputs=inputs)
    assert str(error) == message


@pytest.mark.parametrize(("trigger", "state", "actor", "allowed"), [
    ("record_training", "candidate", "committee", "branch_secretary"),
    ("record_training", "candidate", "outsider", "branch_secretary"),
    ("verify_background", "dossier_prepared", "secretary", "grassroots_committee"),
    ("record_branch_vote", "background_verified", "outsider", "branch_secretary"),
    ("decide_admission", "committee_voted", "committee", "standing_committee_above"),
    ("extend_admission_deadline", "committee_voted", "secretary", "standing_committee_above"),
    ("hold_ceremony", "admission_decided", "outsider", "branch_secretary"),
    ("withdraw_application", "trained", "standing", "branch_secretary"),
    ("reject_application", "trained", "outsider", "branch_secretary, grassroots_committee"),
    ("reject_application", "trained", "standing", "branch_secretary, grassroots_committee"),
    ("reject_application", "branch_voted", "secretary", "grassroots_committee"),
    ("reject_application", "committee_voted", "secretary", "standing_committee_above"),
    ("reject_application", "committee_voted", "committee", "standing_committee_above"),
    ("record_failed_branch_vote", "background_verified", "committee", "branch_secretary"),
    ("record_failed_recognition_vote", "probation_completed", "outsider", "branch_secretary"),
    ("complete_probation", "probationary", "outsider", "branch_secretary"),
    ("recognize_official", "recognition_committee_voted", "department", "standing_committee_above"),
    ("register_existing_member", "candidate", "secretary", "organization_department"),
    ("strike_off", "official_member", "inspector", "standing_committee_above"),
    ("expel", "official_member", "secretary", "inspection_commission, standing_committee_above"),
    ("withdraw_membership", "official_member", "outsider", "standing_committee_above"),
    ("record_death", "official_member", "outsider", "branch_secretary, organization_department"),
])
def test_actor_without_an_allowed_role_is_not_permitted(world: World, trigger: str, state: str,
                                                        actor: str, allowed: str) -> None:
    case_id = case_in(world, state)
    on = add_months(ceremony_of(world), 12) if trigger == "complete_probation" \
        else move_date(world, state)
    extra = {"inputs": dict(EXTRA_INPUTS[trigger])} if trigger in EXTRA_INPUTS else {}
    error = refuse(world, case_id, trigger, on, NotPermitted, actor=actor, **extra)
    assert str(error) == (f"you hold no role allowed to fire {trigger} for this case "
                          f"(allowed: {allowed})")


def test_outsider_cannot_open_a_case_in_another_subtree(world: World) -> None:
    person = world.add_person("Hồ Sỹ Mạnh")
    with pytest.raises(NotPermitted):
        world.service.open_case("outsider", person, "VP", "membership", world.ago(months=1))
    assert world.store.cases.of_person(person) == []


@pytest.mark.parametrize(("actor", "role", "message"), [
    ("secretary", "grassroots_committee",
     "role grassroots_committee may not fire record_training (allowed: branch_secretary)"),
    ("committee", "branch_secretary", "you hold no grant of role branch_secretary for this case"),
])
def test_explicit_role_must_be_allowed_and_held(world: World, actor: str, role: str,
                                                message: str) -> None:
    case_id = case_in(world, "candidate")
    error = refuse(world, case_id, "record_training", move_date(world, "candidate"), NotPermitted,
                   actor=actor, role=role)
    assert str(error) == message


@pytest.mark.parametrize(("state", "actor", "role", "allowed"), [
    ("branch_voted", "secretary", "branch_secretary", "grassroots_committee"),
    ("committee_voted", "secretary", "branch_secretary", "standing_committee_above"),
    ("committee_voted", "committee", "grassroots_committee", "standing_committee_above"),
    ("dossier_prepared", "standing", "standing_committee_above", "branch_secretary, grassroots_committee"),
])
def test_who_may_reject_depends_on_how_far_the_dossier_has_gone(world: World, state: str, actor: str,
                                                                role: str, allowed: str) -> None:
    case_id = case_in(world, state)
    error = refuse(world, case_id, "reject_application", move_date(world, state), NotPermitted,
                   actor=actor, role=role)
    assert str(error) == f"role {role} may not fire reject_application (allowed: {allowed})"


def test_explicit_role_is_recorded(world: World) -> None:
    case_id = case_in(world, "background_verified")
    world.step(case_id, "reject_application", move_date(world, "background_verified"),
               actor="committee", role="grassroots_committee")
    assert world.store.cases.history(case_id)[-1]["role"] == "grassroots_committee"


@pytest.mark.parametrize("state", ["candidate", "background_verified", "official_member"])
def test_business_date_in_the_future_is_bad_input(world: World, state: str) -> None:
    trigger = {"candidate": "record_training", "background_verified": "record_branch_vote",
               "official_member": "record_death"}[state]
    case_id = case_in(world, state)
    tomorrow = world.today + timedelta(days=1)
    error = refuse(world, case_id, trigger, tomorrow, BadInput)
    assert str(error) == (f"business date {D(tomorrow)} is in the future "
                          f"(today is {D(world.today)})")


@pytest.mark.parametrize(("state", "trigger"), [
    ("candidate", "record_training"),
    ("background_verified", "record_branch_vote"),
    ("committee_voted", "extend_admission_deadline"),
    ("probation_completed", "record_recognition_vote"),
    ("official_member", "record_death"),
])
def test_business_date_before_the_state_was_entered_is_bad_input(world: World, state: str,
                                                                  trigger: str) -> None:
    case_id = case_in(world, state)
    entered = entered_on(world, state)
    day_before = entered - timedelta(days=1)
    error = refuse(world, case_id, trigger, day_before, BadInput)
    assert str(error) == (f"business date {D(day_before)} is before the case entered its current "
                          f"state on {D(entered)}")
    # ... while the entry day itself is accepted.
    world.step(case_id, trigger, entered)
    assert len(world.store.cases.history(case_id)) == REACHED_BY[state] + 2


# ---- 4. deadlines and recorded dates ------------------------------------------------------

def test_extend_admission_deadline_adds_30_working_days(world: World) -> None:
    calendar = default_calendar()
    case_id = case_in(world, "committee_voted")
    before = world.store.cases.load(case_id)
    branch_vote = date.fromisoformat(before.facts["branch_vote_date"])
    assert (before.due_on, before.due_move) == \
        (calendar.add_working_days(branch_vote, 60), "decide_admission")

    world.step(case_id, "extend_admission_deadline", move_date(world, "committee_voted"))

    after = world.store.cases.load(case_id)
    assert after.state == "committee_voted"
    assert (after.due_on, after.due_move) == \
        (calendar.add_working_days(before.due_on, 30), "decide_admission")
    assert calendar.working_days_between(before.due_on, after.due_on) == 30
    assert after.facts["extended:decide_admission"] == move_date(world, "committee_voted").isoformat()
    assert after.facts[STATE_ENTERED] == before.facts[STATE_ENTERED]


def test_extend_recognition_deadline_adds_30_working_days(world: World) -> None:
    calendar = default_calendar()
    case_id = case_in(world, "recognition_committee_voted")
    before = world.store.cases.load(case_id)
    vote = date.fromisoformat(before.facts["recognition_vote_date"])
    assert (before.due_on, before.due_move) == \
        (calendar.add_working_days(vote, 30), "recognize_official")

    world.step(case_id, "extend_recognition_deadline", move_date(world, "recognition_committee_voted"))

    after = world.store.cases.load(case_id)
    assert after.state == "recognition_committee_voted"
    assert after.due_on == calendar.add_working_days(before.due_on, 30)
    assert after.facts["extended:recognize_official"] == \
        move_date(world, "recognition_committee_voted").isoformat()


@pytest.mark.parametrize(("state", "trigger", "target"), [
    ("committee_voted", "extend_admission_deadline", "decide_admission"),
    ("recognition_committee_voted", "extend_recognition_deadline", "recognize_official"),
])
def test_a_deadline_may_be_extended_only_once(world: World, state: str, trigger: str,
                                              target: str) -> None:
    calendar = default_calendar()
    case_id = case_in(world, state)
    unextended = world.store.cases.load(case_id).due_on
    first = move_date(world, state)
    world.step(case_id, trigger, first)
    extended = world.store.cases.load(case_id)
    assert extended.due_on == calendar.add_working_days(unextended, 30)
    assert [(d.trigger, d.extended) for d in world.service.deadlines(extended)] == [(target, True)]

    assert reasons(world, case_id, trigger, first + timedelta(days=3)) == [
        f"the deadline of {target} was already extended ({D(first)}); it may be extended only once"]
    # ... while the move whose deadline it is can still be made.
    world.step(case_id, target, first + timedelta(days=3))
    assert world.store.cases.load(case_id).state != state


def test_an_extension_recorded_before_dates_were_kept_still_counts() -> None:
    # Cases extended before extensions were dated hold ``True``; they cannot be extended again.
    case = CaseView("committee_voted", {STATE_ENTERED: "2026-01-05", "branch_vote_date": "2025-12-01",
                                        extension_fact("decide_admission"): True})
    request = MoveRequest("extend_admission_deadline", frozenset({"standing_committee_above"}),
                          date(2026, 1, 12), {"reason": "Chờ ý kiến"})
    with pytest.raises(MoveRefused) as info:
        Engine().plan(load_definition(MEMBERSHIP), case, request, today=date(2026, 2, 1))
    assert info.value.reasons == [
        "the deadline of decide_admission was already extended (earlier); it may be extended only once"]


# Where the clock stands in each state of the main path: (date it counts from, working days, move).
def due_in(world: World, state: str) -> tuple[date, int, str] | None:
    branch_vote, decision, recognition_vote = step_date(world, 3), step_date(world, 5), step_date(world, 8)
    probation_end = add_months(ceremony_of(world), 12)
    return {
        "branch_voted": (branch_vote, 60, "decide_admission"),
        "committee_voted": (branch_vote, 60, "decide_admission"),
        "admission_decided": (decision, 30, "hold_ceremony"),
        "probationary": (probation_end, 30, "record_recognition_vote"),
        "probation_completed": (probation_end, 30, "record_recognition_vote"),
        "recognition_branch_voted": (recognition_vote, 30, "recognize_official"),
        "recognition_committee_voted": (recognition_vote, 30, "recognize_official"),
    }.get(state)


@pytest.mark.parametrize("state", PATH_STATES)
def test_deadline_runs_from_its_start_until_its_move_is_made(world: World, state: str) -> None:
    calendar = default_calendar()
    case_id = case_in(world, state)
    record = world.store.cases.load(case_id)
    expected = due_in(world, state)
    if expected is None:
        assert (record.due_on, record.due_move) == (None, None)
        assert world.service.deadlines(record) == []
    else:
        start, days, move = expected
        due = calendar.add_working_days(start, days)
        assert (record.due_on, record.due_move) == (due, move)
        assert [(d.trigger, d.start, d.due_on, d.extended) for d in world.service.deadlines(record)] == \
            [(move, start, due, False)]
    # Every move with a deadline that was made has stopped its clock: it keeps the start it answered.
    definition = load_definition(MEMBERSHIP)
    made = [trigger for trigger in PATH[:REACHED_BY[state]] if definition.any_transition(trigger).deadline]
    assert {k: v for k, v in record.facts.items() if k.startswith("met:")} == {
        met_fact(t): record.facts[definition.any_transition(t).deadline.start] for t in made}


def test_recognition_vote_is_due_thirty_working_days_after_probation_ends_even_in_probation(
        world: World) -> None:
    case_id = case_in(world, "probationary")
    record = world.store.cases.load(case_id)
    probation_end = date.fromisoformat(record.facts["probation_end"])
    assert probation_end == add_months(ceremony_of(world), 12)
    assert (record.due_on, record.due_move) == \
        (default_calendar().add_working_days(probation_end, 30), "record_recognition_vote")
    # Completing probation does not stop the clock; only the recognition vote does.
    world.step(case_id, "complete_probation", probation_end)
    assert world.store.cases.load(case_id).due_on == record.due_on
    world.step(case_id, "record_recognition_vote", probation_end + timedelta(days=2))
    voted = world.store.cases.load(case_id)
    assert voted.due_move == "recognize_official"
    assert voted.facts[met_fact("record_recognition_vote")] == probation_end.isoformat()


@pytest.mark.parametrize(("state", "trigger", "actor"), [
    ("branch_voted", "reject_application", "committee"),
    ("committee_voted", "withdraw_application", "secretary"),
    ("committee_voted", "reject_application", "standing"),
    ("admission_decided", "withdraw_application", "secretary"),
    ("probationary", "strike_off", "standing"),
    ("probation_completed", "record_death", "secretary"),
    ("recognition_committee_voted", "withdraw_membership", "standing"),
])
def test_deadline_closes_when_its_move_can_no_longer_be_made(world: World, state: str, trigger: str,
                                                             actor: str) -> None:
    case_id = case_in(world, state)
    assert world.store.cases.load(case_id).due_on is not None
    world.step(case_id, trigger, move_date(world, state), actor=actor)
    record = world.store.cases.load(case_id)
    assert (record.due_on, record.due_move) == (None, None)
    assert world.service.deadlines(record) == []


RENEWAL = ("    documents: [CN-NTVĐ]\n    guards:\n      - certificate_valid: {date: certificate_date, "
           "max_age_months: 60}\n    records:\n      certificate_date: certificate_date\n\n"
           "  - trigger: prepare_dossier")


def with_renewal_deadline(deadline: str) -> Any:
    """membership.yaml where renew_training (a move that stays) has a deadline."""
    text = MEMBERSHIP.read_text(encoding="utf-8")
    assert text.count(RENEWAL) == 1
    return parse_definition(text.replace(RENEWAL, RENEWAL.replace("    records:", deadline + "    records:")),
                            "renewal-deadline.yaml")


def renew(definition: Any, facts: dict[str, Any], on: date, certificate: date) -> Any:
    request = MoveRequest("renew_training", frozenset({"branch_secretary"}), on,
                          {"certificate_date": certificate.isoformat()}, docs("CN-NTVĐ"))
    return Engine().plan(definition, CaseView("trained", facts), request, today=on + timedelta(days=30))


def test_made_move_stops_its_clock_until_its_start_is_recorded_again() -> None:
    # A move that stays can still be made after it was made: only the met fact stops its clock.
    calendar = default_calendar()
    definition = with_renewal_deadline("    deadline:\n      within: {working_days: 20}\n")
    facts = {STATE_ENTERED: "2025-03-03", "certificate_date": "2025-02-20"}
    assert [(d.trigger, d.due_on) for d in open_deadlines(definition, "trained", facts, calendar)] == [
        ("renew_training", calendar.add_working_days(date(2025, 3, 3), 20))]
    move = renew(definition, facts, date(2025, 3, 10), date(2025, 3, 7))
    assert move.facts[met_fact("renew_training")] == "2025-03-03"
    assert move.due is None
    assert open_deadlines(definition, "trained", move.facts, calendar) == []
    # Entering a new state records a new start, so the clock runs again from there.
    later = {**move.facts, STATE_ENTERED: "2025-04-01"}
    running = open_deadlines(definition, "dossier_prepared", later, calendar)
    assert [(d.trigger, d.start) for d in running] == [("renew_training", date(2025, 4, 1))]


def test_move_that_records_its_own_start_restarts_its_clock() -> None:
    definition = with_renewal_deadline("    deadline:\n      within: {months: 60}\n"
                                       "      from: certificate_date\n")
    facts = {STATE_ENTERED: "2025-03-03", "certificate_date": "2025-02-20"}
    move = renew(definition, facts, date(2025, 3, 10), date(2025, 3, 7))
    assert move.due is not None
    assert (move.due.trigger, move.due.due_on) == ("renew_training", date(2030, 3, 7))


def test_extended_admission_deadline_is_gone_once_the_admission_is_decided(world: World) -> None:
    case_id = case_in(world, "committee_voted")
    on = move_date(world, "committee_voted")
    world.step(case_id, "extend_admission_deadline", on)
    world.step(case_id, "decide_admission", on + timedelta(days=1))
    record = world.store.cases.load(case_id)
    assert record.due_move == "hold_ceremony"
    assert record.due_on == default_calendar().add_working_days(on + timedelta(days=1), 30)
    assert [d.trigger for d in world.service.deadlines(record)] == ["hold_ceremony"]


def test_official_since_is_twelve_months_after_the_ceremony_even_when_recognized_late(
        world: World) -> None:
    case_id = case_in(world, "probationary")
    ceremony = ceremony_of(world)
    late = add_months(ceremony, 12) + timedelta(days=40)
    world.step(case_id, "complete_probation", late)
    world.step(case_id, "record_recognition_vote", late + timedelta(days=20))
    world.step(case_id, "record_recognition_committee_vote", late + timedelta(days=50))
    decided = late + timedelta(days=90)
    assert decided <= world.today
    world.step(case_id, "recognize_official", decided)
    record = world.store.cases.load(case_id)
    assert record.state == "official_member"
    assert record.facts["official_since"] == add_months(ceremony, 12).isoformat()
    assert record.facts["recognition_decision_date"] == decided.isoformat()
    assert record.due_on is None


def test_new_official_member_can_then_introduce_and_help(world: World) -> None:
    recognized = case_in(world, "official_member", person=world.add_person("Mai Xuân Trường"))
    member = world.store.cases.load(recognized).person_id
    applicant = world.add_person("Tạ Thị Huyền")
    case_id = world.open_case(applicant, on=world.ago(months=3))
    world.step(case_id, "record_training", world.ago(months=3))
    world.step(case_id, "prepare_dossier", world.ago(months=2),
               inputs={"introducers": f"{member}:12,{world.members[1]}:40"})
    assert world.store.cases.load(case_id).state == "dossier_prepared"


def test_repeating_a_move_just_made_says_another_officer_made_it(world: World) -> None:
    case_id = world.open_case()
    on = world.ago(months=19)
    world.step(case_id, "record_training", on)
    before = world.store.cases.history(case_id)
    with pytest.raises(AlreadyMoved) as raised:
        world.step(case_id, "record_training", on, actor="committee")
    assert f"case {case_id} was just moved by another officer: record_training was recorded by " \
           "secretary at " in str(raised.value)
    assert "(event 2); nothing written" in str(raised.value)
    assert world.store.cases.history(case_id) == before


def test_repeating_ones_own_move_just_made_says_you_made_it(world: World) -> None:
    """A command run again after a crash: the officer is told they made the move, when, and
    as which event, not that another officer (named as themselves) beat them to it."""
    from memberflow.workflow.dates import format_timestamp

    case_id = world.open_case()
    on = world.ago(months=19)
    world.step(case_id, "record_training", on)
    before = world.store.cases.history(case_id)
    with pytest.raises(AlreadyMoved) as raised:
        world.step(case_id, "record_training", on)
    assert str(raised.value) == (f"case {case_id}: you already made record_training at "
                                 f"{format_timestamp(before[-1]['recorded_at'])} (event 2); "
                                 "nothing written")
    assert world.store.cases.history(case_id) == before


# ---- separation of duties ------------------------------------------------------------------

def two_hats(world: World) -> str:
    """One user who sits on the grassroots committee and on the standing committee above."""
    world.store.directory.add_user("twohats", "Cán bộ kiêm nhiệm")
    world.store.directory.grant("twohats", "grassroots_committee", "SGD")
    world.store.directory.grant("twohats", "standing_committee_above", "DBK")
    return "twohats"


def test_who_proposed_a_step_may_not_approve_it(world: World) -> None:
    user = two_hats(world)
    case_id = case_in(world, "branch_voted")
    on = move_date(world, "branch_voted")
    step(world, case_id, "record_committee_vote", on, actor=user)
    assert world.store.cases.load(case_id).facts[made_by_fact("record_committee_vote")] == user

    refused = refuse(world, case_id, "decide_admission", on, error=NotPermitted, actor=user)
    assert str(refused) == ("separation of duties: twohats made record_committee_vote on this "
                            "case, so another officer must make decide_admission")
    blocked = {a.transition.trigger: a.failures for a in world.service.available(user, case_id, on)}
    assert blocked["decide_admission"] == [str(refused)]

    step(world, case_id, "decide_admission", on, actor="standing")
    assert world.store.cases.load(case_id).state == "admission_decided"
    assert world.service.replayer().replay(case_id, world.store.cases.history(case_id)).ok


def test_separation_applies_only_where_the_definition_says(world: World) -> None:
    user = two_hats(world)
    case_id = case_in(world, "committee_voted")
    on = move_date(world, "committee_voted")
    step(world, case_id, "extend_admission_deadline", on, actor=user)  # no separate_from
    step(world, case_id, "decide_admission", on, actor=user)  # the committee vote was not theirs
    assert world.store.cases.load(case_id).state == "admission_decided"


def test_removal_proposer_may_not_decide_it(world: World) -> None:
    world.store.directory.add_user("bothsides", "Cán bộ tổ chức kiêm thường vụ")
    world.store.directory.grant("bothsides", "organization_department", "TU")
    world.store.directory.grant("bothsides", "standing_committee_above", "DBK")
    case_id = case_in(world, "official_member")
    on = move_date(world, "official_member")
    refuse(world, case_id, "dismiss_removal_proposal", on, actor="standing",
           inputs={"reason": "không có đề nghị"})
    step(world, case_id, "propose_removal", on, actor="bothsides", role="organization_department")
    for trigger in ("strike_off", "dismiss_removal_proposal"):
        refused = refuse(world, case_id, trigger, on, error=NotPermitted, actor="bothsides",
                         role="standing_committee_above")
        assert "separation of duties: bothsides made propose_removal" in str(refused)
    assert reasons(world, case_id, "propose_removal", on, actor="secretary") == [
        f"removal_proposed_on {D(on)} is already recorded on this case"]
    step(world, case_id, "dismiss_removal_proposal", on, actor="standing")
    facts = world.store.cases.load(case_id).facts
    assert facts["removal_dismissed_on"] == on.isoformat()
    assert "removal_proposed_on" not in facts and made_by_fact("propose_removal") not in facts
    assert reasons(world, case_id, "dismiss_removal_proposal", on, actor="standing") == [
        "no removal_proposed_on is recorded on this case"]
    # A new proposal the same day is open again, and the earlier proposer may now decide it.
    step(world, case_id, "propose_removal", on, actor="secretary")
    step(world, case_id, "dismiss_removal_proposal", on, actor="bothsides",
         role="standing_committee_above")
    assert world.service.replayer().replay(case_id, world.store.cases.history(case_id)).ok


def test_a_dismissal_is_not_dated_before_the_proposal(world: World) -> None:
    case_id = case_in(world, "official_member")
    on = move_date(world, "official_member")
    step(world, case_id, "propose_removal", on + timedelta(days=5))
    assert reasons(world, case_id, "dismiss_removal_proposal", on, actor="standing") == [
        f"business_date {D(on)} is before removal_proposed_on {D(on + timedelta(days=5))}"]


def test_separate_from_must_name_another_move_of_the_definition() -> None:
    text = MEMBERSHIP.read_text(encoding="utf-8").replace(
        "separate_from: [record_committee_vote]", "separate_from: [record_comittee_vote]")
    with pytest.raises(DefinitionInvalid) as info:
        parse_definition(text, "typo.yaml")
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "record_comittee_vote" in row)
    assert [str(p) for p in info.value.problems] == [
        f"typo.yaml:{line}: transition 'decide_admission' is kept apart from unknown move "
        "'record_comittee_vote'"]


# ---- impossible data is bad input, not a refusal --------------------------------------------

@pytest.mark.parametrize(("trigger", "state"), [(t, s) for t, s, _ in VOTE_MOVES + FAILED_VOTES])
@pytest.mark.parametrize(("votes_for", "eligible", "expected"), [
    (10, 9, "input votes_for (10) cannot exceed input votes_eligible (9)"),
    (0, 0, "input votes_eligible must be at least 1 (got 0)"),
    (3, 10**18, "input votes_eligible is 1000000000000000000: more than any real count "
                "(at most 10000000)"),
    (10**7 + 1, 10**7 + 1, "input votes_for is 10000001: more than any real count (at most "
                           "10000000); input votes_eligible is 10000001: more than any real "
                           "count (at most 10000000)"),
])
def test_an_impossible_vote_is_bad_input_and_writes_nothing(world: World, trigger: str, state: str,
                                                           votes_for: int, eligible: int,
                                                           expected: str) -> None:
    case_id = case_in(world, state)
    refused = refuse(world, case_id, trigger, move_date(world, state), error=BadInput,
                     inputs={"votes_for": votes_for, "votes_eligible": eligible})
    assert str(refused) == expected


def test_the_largest_possible_vote_is_judged_by_the_rules(world: World) -> None:
    case_id = case_in(world, "background_verified")
    on = move_date(world, "background_verified")
    assert reasons(world, case_id, "record_branch_vote", on,
                   inputs={"votes_for": 10**7 // 2, "votes_eligible": 10**7}) == [
        "chi bộ vote: 5000000 of 10000000 eligible is not at least 2/3 (at least 6666667 needed)"]
    world.step(case_id, "record_branch_vote", on, inputs={"votes_for": 10**7, "votes_eligible": 10**7})
    assert world.store.cases.load(case_id).state == "branch_voted"


def test_an_impossible_vote_among_several_names_its_inputs(world: World) -> None:
    case_id = case_in(world, "official_member")
    on = move_date(world, "official_member")
    inputs = {**world.inputs_for("strike_off", on), "standing_votes_for": 8,
              "standing_votes_eligible": 7, "committee_votes_eligible": 0, "committee_votes_for": 0}
    refused = refuse(world, case_id, "strike_off", on, error=BadInput, inputs=inputs)
    assert str(refused) == ("input committee_votes_eligible must be at least 1 (got 0); input "
                            "standing_votes_for (8) cannot exceed input standing_votes_eligible (7)")


def test_someone_without_the_role_learns_that_not_that_their_vote_is_impossible(world: World) -> None:
    case_id = case_in(world, "background_verified")
    refused = refuse(world, case_id, "record_branch_vote", move_date(world, "background_verified"),
                     error=NotPermitted, actor="outsider",
                     inputs={"votes_for": 12, "votes_eligible": 0})
    assert "hold no role allowed to fire record_branch_vote" in str(refused)


@pytest.mark.parametrize(("trigger", "state", "inputs", "expected"), [
    ("record_training", "candidate", {"certificate_date": "1990-01-01"},
     "input certificate_date 01/01/1990 is before the person was born (15/06/1995)"),
    ("register_existing_member", "candidate",
     {**REGISTER_INPUTS, "admission_date": "1995-06-14"},
     "input admission_date 14/06/1995 is before the person was born (15/06/1995)"),
    ("record_death", "official_member", {"date_of_death": "1980-01-01"},
     "input date_of_death 01/01/1980 is before the person was born (15/06/1995)"),
])
def test_a_date_before_the_person_was_born_is_bad_input(world: World, trigger: str, state: str,
                                                       inputs: dict[str, str], expected: str) -> None:
    case_id = case_in(world, state)
    on = move_date(world, state)
    refused = refuse(world, case_id, trigger, on, error=BadInput, inputs=inputs,
                     actor="department" if trigger == "register_existing_member" else "secretary")
    assert str(refused) == expected


def test_a_date_on_the_day_of_birth_is_possible(world: World) -> None:
    case_id = case_in(world, "official_member")
    step(world, case_id, "record_death", move_date(world, "official_member"),
         inputs={"date_of_death": "1995-06-15"})
    assert world.store.cases.load(case_id).state == "deceased"


def test_a_case_opened_before_the_person_was_born_is_bad_input(world: World) -> None:
    person = world.add_person("Trần Thị Bé", born=date(2001, 3, 4))
    with pytest.raises(BadInput, match=rf"^business date 03/03/2001 is before person {person} was "
                                       r"born \(04/03/2001\)$"):
        world.open_case(person, on=date(2001, 3, 3))
    assert world.store.cases.of_person(person) == []


class EarlierEngine(Engine):
    """The engine of a release that did not check yet whether data is possible."""

    def plan(self, *args: Any, **kwargs: Any) -> Any:
        return super().plan(*args, **kwargs, replaying=True)


def test_a_move_recorded_before_impossibility_was_checked_still_replays(world: World) -> None:
    """An earlier memberflow recorded a paper membership dated before the person's birth (it
    did not check that). Today the same move is bad input, but the record replays as it was
    judged, and the case goes on."""
    from memberflow.app.service import Service

    case_id = world.open_case(on=start_of(world))
    inputs = {**REGISTER_INPUTS, "admission_date": "1990-05-19"}  # born 15/06/1995
    on = move_date(world, "candidate")
    refuse(world, case_id, "register_existing_member", on, error=BadInput, inputs=inputs,
           actor="department")
    earlier = Service(world.store, EarlierEngine(world.service.engine.calendar))
    earlier.advance("department", case_id, "register_existing_member", on, inputs, {})
    assert world.service.case_as_of(case_id).ok
    step(world, case_id, "record_death", on, inputs={"date_of_death": on.isoformat()})
    replayed = world.service.case_as_of(case_id)
    assert replayed.ok and replayed.state == "deceased"


def test_replay_still_refuses_an_impossible_vote_in_the_record() -> None:
    """What the record says is judged by the vote guard itself: a stored vote of 10 for with 9
    eligible (an altered payload) does not replay."""
    definition = load_definition(MEMBERSHIP)
    context = GuardContext(date(2026, 1, 5), {"votes_for": 10, "votes_eligible": 9}, {}, {})
    guard = next(g for g in definition.transition("record_branch_vote", "background_verified").guards
                 if g.name == "vote_ratio_at_least")
    assert REGISTRY[guard.name].check(context, guard.params) == [
        "chi bộ vote: 10 votes for but only 9 eligible voters"]
