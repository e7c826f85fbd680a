"""Stored definitions are forever: every name the definition format ever accepted still loads
with its old meaning, and every version of the bundled procedure ever published loads, runs,
replays and migrates under today's code.

tests/fixtures/definition_names.yaml lists the names (guards with their parameters, keys,
values); tests/fixtures/definitions/membership@COMMIT.yaml are the six distinct versions of
definitions/membership.yaml in git history (`git rev-list HEAD -- definitions/membership.yaml`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import ADMISSION_PATH, MEMBERSHIP, World
from memberflow.app.repinning import Migrator
from memberflow.app.screening import Screening, YearRecord
from memberflow.app.service import Service
from memberflow.errors import MoveRefused
from memberflow.storage.store import Store
from memberflow.workflow import assessment, calendar_files, loader, personal_data, readmission
from memberflow.workflow.dates import add_months, format_date
from memberflow.workflow.definition import LANGUAGES, STAGES, Definition
from memberflow.workflow.diff import diff
from memberflow.workflow.guards import EDUCATION_LEVELS, REGISTRY, current_guards
from memberflow.workflow.inputs import INPUT_TYPES
from memberflow.workflow.lint import lint
from memberflow.workflow.loader import load_definition
from memberflow.workflow.readmission import Claim

FIXTURES = Path(__file__).resolve().parent / "fixtures"
NAMES = yaml.safe_load((FIXTURES / "definition_names.yaml").read_text(encoding="utf-8"))
EVERY_NAME = FIXTURES / "definitions" / "every_name.yaml"
VERSIONS = sorted((FIXTURES / "definitions").glob("membership@*.yaml"))
VERSION_IDS = [path.stem.split("@")[1] for path in VERSIONS]
PENDING_VERSION = FIXTURES / "definitions" / "membership@d884598.yaml"
# What lint says about each version only because it was written for an earlier engine.
LEGACY_FINDINGS = {"75dc0a5": {"implicit-record"}, "d884598": {"superseded-guard"}}

KEY_SETS: dict[str, Any] = {
    "definition": loader.TOP_KEYS, "labels": LANGUAGES, "state": loader.STATE_KEYS,
    "transition": loader.TRANSITION_KEYS, "input": loader.INPUT_KEYS,
    "records_derivation": loader.DERIVATION_KEYS, "deadline": loader.DEADLINE_KEYS,
    "assessment": assessment.ASSESSMENT_KEYS, "rating": assessment.RATING_KEYS,
    "screening": assessment.SCREENING_KEYS, "criterion": assessment.CRITERION_KEYS,
    "criterion_rating": assessment.RATING_RULE_KEYS,
    "criterion_months": assessment.MONTHS_RULE_KEYS,
    "readmission": readmission.READMISSION_KEYS, "readmission_bar": readmission.BAR_KEYS,
    "readmission_exception": readmission.EXCEPTION_KEYS,
    "personal_data": personal_data.PERSONAL_DATA_KEYS,
    "calendar_file": calendar_files.FILE_KEYS, "calendar_day": calendar_files.DAY_KEYS,
}
VALUE_SETS: dict[str, Any] = {
    "input_types": INPUT_TYPES, "period_units": loader.PERIOD_UNITS, "stages": STAGES,
    "languages": LANGUAGES, "education_levels": EDUCATION_LEVELS,
    "month_fields": assessment.MONTH_FIELDS, "calendar_day_kinds": calendar_files.KINDS,
}
# Blocks of a definition file every_name.yaml writes (calendar files are another format).
DEFINITION_BLOCKS = set(KEY_SETS) - {"calendar_file", "calendar_day"}


# -- the list of names, both ways ------------------------------------------------------------
def test_every_guard_ever_accepted_is_registered_with_its_parameters() -> None:
    for name, listed in NAMES["guards"].items():
        assert name in REGISTRY, f"guard {name!r} was published in {listed['since']}: keep it " \
            "registered (an alias for a rename, superseded for a new meaning)"
        guard = REGISTRY[name]
        assert {key: param.kind for key, param in guard.params.items()} == listed["params"], name
        assert (guard.superseded_by is not None) == listed.get("superseded", False), name
    assert set(REGISTRY) <= set(NAMES["guards"]), "a new guard must be added to definition_names.yaml"
    assert set(current_guards()) == {n for n, g in NAMES["guards"].items() if not g.get("superseded")}


@pytest.mark.parametrize("block", sorted(KEY_SETS))
def test_every_key_ever_accepted_is_accepted_and_every_accepted_key_is_listed(block: str) -> None:
    assert set(NAMES["keys"][block]) == set(KEY_SETS[block])


@pytest.mark.parametrize("kind", sorted(VALUE_SETS))
def test_every_value_ever_accepted_is_accepted_and_every_accepted_value_is_listed(kind: str) -> None:
    assert set(NAMES["values"][kind]) == set(VALUE_SETS[kind])


def test_the_list_covers_every_block_and_value_kind_the_checks_know() -> None:
    assert set(NAMES["keys"]) == set(KEY_SETS)
    assert set(NAMES["values"]) == set(VALUE_SETS)


def _keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)


def test_a_definition_using_every_name_ever_accepted_loads() -> None:
    definition = load_definition(EVERY_NAME)
    used: dict[str, set[str]] = {}
    for guard in (g for t in definition.transitions for g in t.guards):
        used.setdefault(guard.name, set()).update(guard.params)
    assert used == {name: set(g["params"]) for name, g in NAMES["guards"].items()}
    written = set(_keys(yaml.safe_load(EVERY_NAME.read_text(encoding="utf-8"))))
    for block in DEFINITION_BLOCKS:
        assert set(NAMES["keys"][block]) <= written, block
    types = {spec.type for t in definition.transitions for spec in t.inputs}
    assert types == set(NAMES["values"]["input_types"])
    units = {t.deadline.unit for t in definition.transitions if t.deadline}
    assert units == set(NAMES["values"]["period_units"])
    assert {s.stage for s in definition.states.values()} == set(NAMES["values"]["stages"])
    findings = lint(definition)
    assert [f.code for f in findings if f.severity == "error"] == []
    assert [(f.code, f.line) for f in findings if f.code == "superseded-guard"] == [
        ("superseded-guard", g.line) for t in definition.transitions for g in t.guards
        if g.name == "pending"]


# -- every published version of the bundled procedure ---------------------------------------
def test_the_fixtures_hold_every_version_including_todays() -> None:
    assert len(VERSIONS) >= 6  # the six of git history when this test was written
    assert MEMBERSHIP.read_bytes() in {v.read_bytes() for v in VERSIONS}, \
        "definitions/membership.yaml changed: copy the new version to " \
        "tests/fixtures/definitions/membership@<its commit>.yaml (versions are kept forever)"


@pytest.mark.parametrize("path", VERSIONS, ids=VERSION_IDS)
def test_each_published_version_loads_and_lints_clean_but_for_its_legacy(path: Path) -> None:
    definition = load_definition(path)
    assert definition.name == "membership"
    codes = {finding.code for finding in lint(definition)}
    assert codes == LEGACY_FINDINGS.get(path.stem.split("@")[1], set())


def installed(db_url: str, path: Path) -> Service:
    store = Store(db_url, must_exist=False)
    store.create_schema()
    service = Service(store)
    definition = load_definition(path)
    store.definitions.store(definition.name, definition.sha256, definition.source, path.name)
    return service


@pytest.fixture
def version_world(request: pytest.FixtureRequest, db_url: str) -> Iterator[World]:
    service = installed(db_url, request.param)
    yield World(service)
    service.store.close()


def replays_clean(world: World) -> int:
    summary = world.service.replay_all(workers=1)
    assert summary.divergent == []
    return summary.events


@pytest.mark.parametrize("version_world", VERSIONS, ids=VERSION_IDS, indirect=True)
def test_each_published_version_runs_replays_and_migrates_to_today(version_world: World) -> None:
    """The main path (admission, probation, recognition) on the old version, replayed; then
    today's bundled version is published and the running cases are migrated onto it."""
    world = version_world
    old = world.service.definition(world.store.cases.load(1).definition_id)
    official = world.official_case()
    running, ceremony = world.admitted_case(months_ago=3)
    assert world.store.cases.load(official).state == "official_member"
    assert world.store.cases.load(running).state == "probationary"
    assert world.store.cases.load(running).facts["probation_end"] == \
        add_months(ceremony, 12).isoformat()
    assert replays_clean(world) == world.store.cases.count_events()

    world.store.directory.add_user("quantri", "Quản trị")
    world.store.directory.grant("quantri", "administrator", None)
    today = load_definition(MEMBERSHIP)
    _, new = world.store.definitions.store(today.name, today.sha256, today.source, "membership.yaml")
    assert new == (today.sha256 != old.sha256)
    if new:
        row, plan = Migrator(world.service).prepare("quantri", "membership", 2, [])
        assert plan.cases == 4 and not plan.stranded  # World's two members, official, running
        assert Migrator(world.service).apply("quantri", row, plan) == 4
    assert world.service.definition(world.store.cases.load(running).definition_id).sha256 == today.sha256
    propose(world, running, world.today)  # moves under today's rules after the migration
    dismiss(world, running, world.today)
    replays_clean(world)


def test_diff_between_versions_reports_every_transition_key_that_changed() -> None:
    """bf5c405 replaced the pending guard by recorded/not_recorded and clears:."""
    before, after = (load_definition(FIXTURES / "definitions" / f"membership@{c}.yaml")
                     for c in ("d884598", "bf5c405"))
    lines = [change.text for change in diff(before, after)]
    assert lines == [
        "transition propose_removal: guard not_recorded (fact: removal_proposed_on) added",
        "transition dismiss_removal_proposal: guard pending (opened: removal_proposed_on, "
        "closed: removal_dismissed_on) removed",
        "transition dismiss_removal_proposal: guard recorded (fact: removal_proposed_on) added",
        "transition dismiss_removal_proposal: guard dates_in_order (dates: [removal_proposed_on, "
        "business_date]) added",
        "transition dismiss_removal_proposal: clears fact removal_proposed_on added",
        "transition dismiss_removal_proposal: clears fact made_by.propose_removal added",
    ]


# -- the superseded pending guard keeps its meaning exactly ---------------------------------
@pytest.fixture
def pending_world(db_url: str) -> Iterator[World]:
    service = installed(db_url, PENDING_VERSION)
    yield World(service)
    service.store.close()


def propose(world: World, case_id: int, on: date) -> None:
    world.service.advance("secretary", case_id, "propose_removal", on,
                          {"ground": "absence_or_unpaid_dues", "reason": "Bỏ sinh hoạt"})


def dismiss(world: World, case_id: int, on: date) -> None:
    world.service.advance("committee", case_id, "dismiss_removal_proposal", on,
                          {"reason": "Đã sinh hoạt lại"})


def member_case(world: World) -> int:
    (case,) = world.store.cases.of_person(world.members[0])
    assert case.state == "official_member"
    return case.id


def test_the_pending_guard_of_d884598_closes_a_proposal_as_it_did(pending_world: World) -> None:
    """Open while the proposal's date is later than the last dismissal's (compared as dates):
    a second dismissal is refused, and so is a dismissal of a re-proposal made on the very
    day of the earlier dismissal; a re-proposal on a later day may be dismissed."""
    world = pending_world
    case_id = member_case(world)
    first, second = world.ago(days=10), world.ago(days=5)
    propose(world, case_id, first)
    dismiss(world, case_id, first)
    with pytest.raises(MoveRefused) as again:
        dismiss(world, case_id, first)
    assert again.value.reasons == [f"nothing to close: removal_proposed_on was already closed by "
                                   f"removal_dismissed_on {format_date(first)}"]
    propose(world, case_id, first)  # the same day as the dismissal: not open under this guard
    with pytest.raises(MoveRefused):
        dismiss(world, case_id, first)
    propose(world, case_id, second)
    dismiss(world, case_id, second)
    facts = world.store.cases.load(case_id).facts
    assert (facts["removal_proposed_on"], facts["removal_dismissed_on"]) == \
        (second.isoformat(), second.isoformat())
    replays_clean(world)


def test_screening_reads_a_proposal_dismissed_under_the_pending_guard_as_closed(
        pending_world: World) -> None:
    world = pending_world
    case_id = member_case(world)
    person = world.store.cases.load(case_id).person_id
    year = world.today.year - 1
    Screening(world.service).record("secretary", [YearRecord(person, year, 60, None,
                                                             {"absence_months": 4})])

    def proposed_on() -> str | None:
        (listed,) = Screening(world.service).screen(year)
        assert listed.case_id == case_id
        return listed.proposed_on

    assert proposed_on() is None
    propose(world, case_id, world.ago(days=10))
    assert proposed_on() == world.ago(days=10).isoformat()
    dismiss(world, case_id, world.ago(days=5))
    assert proposed_on() is None
    propose(world, case_id, world.ago(days=2))
    assert proposed_on() == world.ago(days=2).isoformat()


def test_a_readmission_section_without_ended_on_and_ground_input_reads_them_as_it_did(
        pending_world: World) -> None:
    """d884598..6951fd4 named neither key: the code read the removal ground from the ending
    move's input `ground`, so an earlier strike-off for absence still bars readmission."""
    world = pending_world
    person = world.add_person("Nguyễn Văn Cũ")
    case_id = world.service.open_case("department", person, "VP", "membership", world.ago(months=60))
    world.service.advance("department", case_id, "register_existing_member", world.ago(months=60),
                          {"admission_date": "2000-05-19", "official_since": "2001-05-19",
                           "party_card_number": "007"})
    world.step(case_id, "strike_off", world.ago(months=40))
    with pytest.raises(MoveRefused) as refused:
        world.service.open_case("secretary", person, "VP", "membership", world.today,
                                Claim(documents={"TU-DY": "CV 123-TU", "1-KNĐ": "đơn"}))
    assert refused.value.reasons == ["barred from readmission: Abandoned party activity "
                                     "(Bỏ sinh hoạt đảng)"]
    rules = world.service.definition(1).readmission
    assert rules is not None and (rules.ended_on, rules.ground_input) == ("removal_date", "ground")


def test_the_first_version_records_a_date_input_other_moves_read(db_url: str) -> None:
    """75dc0a5 recorded every input as a fact: record_branch_vote's certificate check reads the
    certificate_date record_training took, which its file never lists under records."""
    service = installed(db_url, VERSIONS[VERSION_IDS.index("75dc0a5")])
    world = World(service)
    case_id = world.open_case(on=world.ago(months=6))
    world.walk(case_id, ADMISSION_PATH[:4], world.ago(months=6))
    facts = world.store.cases.load(case_id).facts
    assert facts["certificate_date"] == (world.ago(months=6) - timedelta(days=10)).isoformat()
    assert world.store.cases.load(case_id).state == "branch_voted"
    service.store.close()


def test_definitions_carry_their_version_through_the_stored_text(db_url: str) -> None:
    """A version is parsed from its stored text; the sha256 pins it (sanity for the above)."""
    service = installed(db_url, PENDING_VERSION)
    row = service.store.definitions.latest("membership")
    definition: Definition = service.definition(row["id"])
    assert definition.sha256 == load_definition(PENDING_VERSION).sha256 == row["sha256"]
    service.store.close()


def test_a_proposal_closed_under_the_pending_guard_stays_closed_after_migration(
        pending_world: World) -> None:
    """d884598 leaves a dismissed proposal's date recorded; today's version reads a recorded
    date as an open proposal. Migrating clears what today's dismissal clears, for a closed
    proposal only, says so in the migration event, and replay follows it."""
    world = pending_world
    dismissed, still_open = member_case(world), world.store.cases.of_person(world.members[1])[0].id
    propose(world, dismissed, world.ago(days=10))
    dismiss(world, dismissed, world.ago(days=9))
    propose(world, still_open, world.ago(days=10))
    world.store.directory.add_user("quantri", "Quản trị")
    world.store.directory.grant("quantri", "administrator", None)
    today = load_definition(MEMBERSHIP)
    world.store.definitions.store(today.name, today.sha256, today.source, "membership.yaml")
    row, plan = Migrator(world.service).prepare("quantri", "membership", 2, [])
    assert plan.cleared == {"removal_proposed_on": 1, "made_by.propose_removal": 1}
    Migrator(world.service).apply("quantri", row, plan)

    facts = world.store.cases.load(dismissed).facts
    assert "removal_proposed_on" not in facts and "made_by.propose_removal" not in facts
    assert facts["removal_dismissed_on"] == world.ago(days=9).isoformat()
    assert json.loads(world.store.cases.history(dismissed)[-1]["payload"])["cleared"] == \
        ["made_by.propose_removal", "removal_proposed_on"]
    assert world.store.cases.load(still_open).facts["removal_proposed_on"] == \
        world.ago(days=10).isoformat()
    assert "cleared" not in json.loads(world.store.cases.history(still_open)[-1]["payload"])
    propose(world, dismissed, world.ago(days=1))  # under today's rules: no proposal is open
    dismiss(world, still_open, world.ago(days=1))
    replays_clean(world)
