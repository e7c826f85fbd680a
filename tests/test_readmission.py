"""Readmission: a new case linked to the earlier membership, opened only under the rules the
definition states (wait, once only, barred categories, consent on file), and replayed."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI_BLOC, World, acting
from memberflow.errors import BadInput, MoveRefused
from memberflow.storage.verification import verify
from memberflow.workflow.dates import add_months, format_date
from memberflow.workflow.readmission import READMISSION_FACT, Claim
from sqlalchemy import text

CONSENT = {"TU-DY": "CV 123-TU", "1-KNĐ": "đơn"}


def former_member(world: World, ended_months_ago: int, trigger: str = "strike_off",
                  inputs: dict[str, Any] | None = None, person: int | None = None) -> tuple[int, int]:
    """A person registered as a member long ago whose membership ended; (person, case)."""
    person = person or world.add_person("Nguyễn Văn Cũ", date(1975, 3, 2))
    start = world.ago(months=ended_months_ago + 24)
    case_id = world.service.open_case("department", person, "VP", "membership", start)
    world.service.advance("department", case_id, "register_existing_member", start,
                          {"admission_date": "2000-05-19", "official_since": "2001-05-19",
                           "party_card_number": "007"})
    end = world.ago(months=ended_months_ago)
    if inputs is None and trigger == "strike_off":  # a ground that does not bar readmission
        inputs = {**world.inputs_for(trigger, end), "ground": "political_standard_failed"}
    world.step(case_id, trigger, end, **({"inputs": inputs} if inputs is not None else {}))
    return person, case_id


def readmit(world: World, person: int, on: date | None = None, **claim: Any) -> int:
    claim.setdefault("documents", CONSENT)
    return world.service.open_case("secretary", person, "VP", "membership", on or world.today,
                                   Claim(**claim))


def totals(world: World) -> tuple[int, int]:
    with world.store.db.connect() as conn:
        return tuple(conn.execute(text("SELECT (SELECT count(*) FROM cases), "
                                       "(SELECT count(*) FROM audit_events)")).one())  # type: ignore


def refused(world: World, person: int, **claim: Any) -> list[str]:
    before = totals(world)
    with pytest.raises(MoveRefused) as info:
        readmit(world, person, **claim)
    assert totals(world) == before
    assert info.value.summary == f"readmission of person {person} is refused"
    return info.value.reasons


def test_readmission_opens_a_linked_case_that_replays(world: World) -> None:
    person, earlier = former_member(world, 40, inputs={**world.inputs_for("strike_off", world.today),
                                                       "ground": "political_standard_failed"})
    case_id = readmit(world, person)
    record = world.store.cases.load(case_id)
    assert (record.state, record.facts[READMISSION_FACT]) == ("candidate", earlier)
    assert record.facts["documents_on_file"] == sorted(CONSENT)
    opening = world.store.cases.history(case_id)[0]
    payload = json.loads(opening["payload"])
    assert payload["evidence"]["earlier_membership"] == {
        "case_id": earlier, "ended_in": "struck_off", "ended_on": world.ago(months=40).isoformat(),
        "ground": "political_standard_failed", "readmissions": []}
    assert payload["documents"] == CONSENT
    assert [(d["seq"], d["code"], d["reference"]) for d in world.store.cases.documents(case_id)] == \
        [(1, code, reference) for code, reference in CONSENT.items()]
    replayed = world.service.replayer().replay(case_id, world.store.cases.history(case_id))
    assert replayed.ok and replayed.facts == record.facts
    assert verify(world.store.db, case_id).ok
    # The readmitted candidate goes through admission again.
    world.walk(case_id, ["record_training", "prepare_dossier"], world.today, gap_days=0)
    assert world.store.cases.load(case_id).state == "dossier_prepared"


def test_every_broken_rule_is_listed_and_nothing_is_written(world: World) -> None:
    person, _ = former_member(world, 20)
    ended = world.ago(months=20)
    assert refused(world, person, documents={"1-KNĐ": "đơn"}, declared=frozenset({"corruption"})) == [
        f"membership ended on {format_date(ended)}; readmission needs 36 months, so not before "
        f"{format_date(add_months(ended, 36))}",
        "barred from readmission: Convicted of corruption (Bị kết án về tội tham nhũng)",
        "document TU-DY must be attached with this readmission"]
    cleared = world.ago(months=30)
    person2, _ = former_member(world, 40, person=world.add_person("Trần Văn Án", date(1970, 1, 1)))
    assert refused(world, person2, record_cleared_on=cleared) == [
        f"criminal record cleared on {format_date(cleared)}; readmission needs 60 months after it"]


@pytest.mark.parametrize(("trigger", "inputs", "reason"), [
    ("withdraw_membership", None, "Applied to leave the Party"),
    ("strike_off", {"ground": "absence_or_unpaid_dues"}, "Abandoned party activity"),
])
def test_barred_endings_are_found_from_the_earlier_case(world: World, trigger: str,
                                                        inputs: dict[str, Any] | None,
                                                        reason: str) -> None:
    full = {**world.inputs_for(trigger, world.today), **(inputs or {})}
    person, _ = former_member(world, 40, trigger, full)
    vietnamese = next(b.labels.vi for b in bars(world) if b.labels.en == reason)
    assert [r for r in refused(world, person) if "barred" in r] == [
        f"barred from readmission: {reason} ({vietnamese})"]


def bars(world: World) -> Any:
    definition = world.service.definition(world.store.definitions.latest("membership")["id"])
    return definition.readmission.bars


def test_family_hardship_lifts_the_bar_on_those_who_applied_to_leave(world: World) -> None:
    person, earlier = former_member(world, 40, "withdraw_membership")
    case_id = readmit(world, person, exceptions=frozenset({"family_hardship"}))
    assert world.store.cases.load(case_id).facts[READMISSION_FACT] == earlier
    payload = json.loads(world.store.cases.history(case_id)[0]["payload"])
    assert payload["readmission"] == {"declared": [], "exceptions": ["family_hardship"],
                                      "record_cleared_on": None}


def test_readmission_is_allowed_once_only(world: World) -> None:
    person, _ = former_member(world, 100)
    second = readmit(world, person, on=world.ago(months=60))
    world.service.advance("department", second, "register_existing_member", world.ago(months=60),
                          {"admission_date": "2020-05-19", "official_since": "2021-05-19",
                           "party_card_number": "008"})
    world.step(second, "strike_off", world.ago(months=50),
               inputs={**world.inputs_for("strike_off", world.today), "ground": "party_card_returned"})
    assert refused(world, person) == [
        f"readmission is allowed once only: case {second} was already a readmission"]


def test_deceased_or_never_member_cannot_be_readmitted(world: World) -> None:
    person, _ = former_member(world, 40, "record_death",
                              {"date_of_death": world.ago(months=40).isoformat()})
    assert refused(world, person)[0].startswith("case ")
    applicant = world.add_person("Chưa từng là đảng viên")
    rejected = world.open_case(applicant, on=world.ago(months=3))
    world.step(rejected, "reject_application", world.ago(months=2))
    with pytest.raises(MoveRefused, match="has no membership that ended"):
        readmit(world, applicant)
    world.open_case(applicant, on=world.ago(months=1))  # an ordinary case after a rejection


def test_an_ordinary_case_for_a_former_member_is_refused(world: World) -> None:
    person, earlier = former_member(world, 40)
    with pytest.raises(MoveRefused, match=f"person {person} was a member \\(case {earlier} ended "
                                          "in struck_off\\); a new membership is a readmission"):
        world.open_case(person, on=world.today)


def test_unknown_categories_and_documents_are_bad_input(world: World) -> None:
    person, _ = former_member(world, 40)
    with pytest.raises(BadInput, match="unknown barred category 'tham_nhung'"):
        readmit(world, person, declared=frozenset({"tham_nhung"}))
    with pytest.raises(BadInput, match="unknown exception 'illness'"):
        readmit(world, person, exceptions=frozenset({"illness"}))
    with pytest.raises(BadInput, match="unknown document code 'XYZ'"):
        readmit(world, person, documents={**CONSENT, "XYZ": "?"})


def test_a_readmission_that_breaks_the_rules_is_caught_by_replay(world: World) -> None:
    person, _ = former_member(world, 40)
    case_id = readmit(world, person)
    history = world.store.cases.history(case_id)
    forged = dict(history[0])
    payload = json.loads(forged["payload"])
    payload["evidence"]["earlier_membership"]["ended_on"] = world.ago(months=2).isoformat()
    forged["payload"] = json.dumps(payload)
    result = world.service.replayer().replay(case_id, [forged, *history[1:]])
    assert not result.ok
    assert "readmission not legal under membership: membership ended on" in str(result.divergence)


def test_cli_readmit_reports_each_rule_and_opens_when_they_hold(tmp_path: Path) -> None:
    db = tmp_path / "readmit.db"
    script = str(Path(sys.executable).parent / "memberflow")

    def run(*args: str, actor: str = "quantri") -> subprocess.CompletedProcess[str]:
        return subprocess.run([script, *acting(str(db), actor), *args],
                              capture_output=True, text=True, timeout=120)

    assert run("init", "--admin", "quantri").returncode == 0
    for args in CLI_BLOC:
        assert run(*args).returncode == 0
    run("person", "add", "--name", "Võ Thị Lại", "--birth-date", "01/01/1970", "--gender", "female")
    assert run("case", "open", "1", "--org", "VP", "--date", "01/01/2015", actor="btc").returncode == 0
    assert run("case", "advance", "1", "register_existing_member", "--date", "01/01/2015",
               "-i", "admission_date=01/01/2000", "-i", "official_since=01/01/2001",
               "-i", "party_card_number=1", actor="btc").returncode == 0
    run("user", "add", "btv", "--name", "Thường vụ")
    run("user", "grant", "btv", "standing_committee_above", "--org", "DBK")
    death = run("case", "advance", "1", "withdraw_membership", "--date", "01/06/2022",
                "-i", "under_discipline=no", "-i", "decision_number=9", "-d", "ĐƠN-RKĐ", actor="btv")
    assert death.returncode == 0, death.stderr
    no = run("case", "readmit", "1", "--org", "VP", "-d", "TU-DY=CV 1", actor="bithu")
    assert no.returncode == 1
    assert no.stderr.splitlines() == [
        "refused: readmission of person 1 is refused",
        "  - barred from readmission: Applied to leave the Party (Tự xin ra khỏi Đảng)",
        "  - document 1-KNĐ must be attached with this readmission"]
    yes = run("case", "readmit", "1", "--org", "VP", "-d", "TU-DY=CV 1", "-d", "1-KNĐ",
              "--exception", "family_hardship", actor="bithu")
    assert (yes.returncode, yes.stdout) == (0, "case 2 opened for person #1 at VP: readmission "
                                               "after case 1\n")
    assert run("audit", "replay", "--all", actor="kiemtra").returncode == 0
