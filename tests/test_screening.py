"""Annual assessment and screening: ratings from scores, who screening lists and why, and
proposals to strike off made in bulk — on both databases, and through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI_BLOC, World, login_url
from memberflow.app.screening import Screening, YearRecord
from memberflow.errors import BadInput, NotPermitted

MONTHS = ("absence_months", "unpaid_dues_months", "no_progress_months")


def record(world: World, person: int, year: int, score: int, actor: str = "secretary",
           rating: str | None = None, **months: int) -> None:
    Screening(world.service).record(actor, [YearRecord(person, year, score, rating, months)])


def assessments(world: World, person: int) -> list[dict[str, Any]]:
    return world.store.assessments.history(person)


def test_the_rating_is_the_band_the_score_reaches_or_lower(world: World) -> None:
    year = world.today.year
    member = world.members[0]
    record(world, member, year - 2, 95)
    record(world, member, year - 1, 95, rating="good")  # excellent needs more than points
    record(world, member, year, 49)
    assert [(r["year"], r["score"], r["rating"]) for r in assessments(world, member)] == [
        (year - 2, 95, "excellent"), (year - 1, 95, "good"), (year, 49, "not_completed")]
    with pytest.raises(BadInput, match="rating good needs a score of at least 70; 60 is completed"):
        record(world, member, year, 60, rating="good")
    with pytest.raises(BadInput, match="score 101 is outside 0–100"):
        record(world, member, year, 101)
    with pytest.raises(BadInput, match="absence_months must be from 0 to 12 months, not 13"):
        record(world, member, year, 80, absence_months=13)
    with pytest.raises(BadInput, match=f"year {year + 1} is outside 1930–{year}"):
        record(world, member, year + 1, 80)
    assert len(assessments(world, member)) == 3


def test_only_officers_of_the_members_organization_record_and_only_members_are_rated(
        world: World) -> None:
    member = world.members[0]
    with pytest.raises(NotPermitted, match="outsider holds no role that records assessments"):
        record(world, member, world.today.year, 80, actor="outsider")
    with pytest.raises(NotPermitted):
        record(world, member, world.today.year, 80, actor="standing")
    applicant = world.add_person("Người xin vào Đảng")
    world.open_case(applicant)
    with pytest.raises(BadInput, match=f"person {applicant} is not a member"):
        record(world, applicant, world.today.year, 80)
    record(world, member, world.today.year, 80, actor="department")
    assert [r["recorded_by"] for r in assessments(world, member)] == ["department"]


def bloc_for_screening(world: World) -> dict[str, int]:
    """Members each meeting one criterion (or none) in the current year."""
    year = world.today.year
    people = {name: world.register_member(f"Đảng viên {name}")
              for name in ("two_years", "absent", "unpaid", "one_bad_year", "fine", "corrected")}
    record(world, people["two_years"], year - 1, 30)
    record(world, people["two_years"], year, 45)
    record(world, people["absent"], year, 75, absence_months=3)
    record(world, people["unpaid"], year, 75, unpaid_dues_months=5)
    record(world, people["one_bad_year"], year, 40)
    record(world, people["fine"], year, 85, absence_months=2, unpaid_dues_months=2)
    record(world, people["corrected"], year, 70, absence_months=6)
    record(world, people["corrected"], year, 70, absence_months=0)  # a correction: newest counts
    case_id, _ = world.admitted_case(6)
    people["probationer"] = world.store.cases.load(case_id).person_id
    record(world, people["probationer"], year, 40)
    return people


def test_screening_lists_each_member_meeting_a_criterion_with_the_reason(world: World) -> None:
    people = bloc_for_screening(world)
    year = world.today.year
    listed = {m.person_id: m for m in Screening(world.service).screen(year)}
    assert set(listed) == {people[n] for n in ("two_years", "absent", "unpaid", "probationer")}
    two = listed[people["two_years"]]
    assert [f.criterion.name for f in two.findings] == ["not_completed_two_years"]
    assert two.findings[0].reason.vi == f"xếp loại Không hoàn thành nhiệm vụ năm {year - 1}, {year}"
    assert two.findings[0].criterion.ground == "standards_violated_two_years"
    assert listed[people["absent"]].findings[0].reason.en == \
        "absent from party activities 3 months in the year (at least 3)"
    assert [f.criterion.ground for f in listed[people["unpaid"]].findings] == ["absence_or_unpaid_dues"]
    probationer = listed[people["probationer"]]
    assert (probationer.state, [f.criterion.name for f in probationer.findings]) == \
        ("probationary", ["probation_not_eligible"])
    # The year before: only what had happened by then.
    assert [m.person_id for m in Screening(world.service).screen(year - 1)] == []
    assert Screening(world.service).screen(year, "OTHER") == []
    assert {m.person_id for m in Screening(world.service).screen(year, "VP")} == set(listed)


def test_proposals_are_made_once_each_and_the_proposer_may_not_decide(world: World) -> None:
    people = bloc_for_screening(world)
    screening = Screening(world.service)
    listed = screening.screen(world.today.year)
    results = screening.propose("department", listed, world.today)
    assert [r.outcome for r in results] == ["moved"] * 4
    for member in listed:
        event = world.store.cases.history(member.case_id)[-1]
        payload = json.loads(event["payload"])
        assert (event["trigger"], event["actor"]) == ("propose_removal", "department")
        assert payload["inputs"]["ground"] == member.findings[0].criterion.ground
        assert member.findings[0].reason.vi in payload["inputs"]["reason"]
    again = screening.screen(world.today.year)
    assert all(m.proposed_on == world.today.isoformat() for m in again)
    assert [r.outcome for r in screening.propose("department", again, world.today)] == ["skipped"] * 4
    case_id = next(m.case_id for m in listed if m.person_id == people["absent"])
    world.store.directory.grant("department", "standing_committee_above", "DBK")
    with pytest.raises(NotPermitted, match="separation of duties: department made propose_removal"):
        world.service.advance("department", case_id, "strike_off", world.today,
                              world.inputs_for("strike_off", world.today),
                              world.documents_for(case_id, "strike_off"),
                              "standing_committee_above")
    world.step(case_id, "strike_off", world.today)
    assert world.store.cases.load(case_id).state == "struck_off"


# -- through the real command line ------------------------------------------------------------
def run(db: Path, *args: str, actor: str | None = "bithu") -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "memberflow"), "--db", str(db),
               *(["--actor", actor] if actor else []), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.fixture
def cli_db(tmp_path: Path) -> tuple[Path, list[int]]:
    """A CLI-built bloc with three registered official members at VP."""
    db = tmp_path / "screen.db"
    assert run(db, "init", "--admin", "quantri", actor=None).returncode == 0
    for args in CLI_BLOC:
        assert run(db, *args, actor="quantri").returncode == 0
    members = []
    for name in ("Lê Văn Một", "Trần Thị Hai", "Phạm Văn Ba"):
        out = run(db, "person", "add", "--name", name, "--birth-date", "01/01/1970",
                  "--gender", "male", actor="quantri")
        person = int(out.stdout.split("#")[1].split()[0])
        case = run(db, "case", "open", str(person), "--org", "VP", "--date", "01/01/2020", actor="btc")
        case_id = case.stdout.split()[1]
        moved = run(db, "case", "advance", case_id, "register_existing_member", "--date",
                    "01/01/2020", "-i", "admission_date=01/01/2010", "-i", "official_since=01/01/2011",
                    "-i", "party_card_number=42", actor="btc")
        assert moved.returncode == 0, moved.stderr
        members.append(person)
    return db, members


def test_cli_assess_import_is_all_or_nothing_and_screen_opens_proposals(
        cli_db: tuple[Path, list[int]], tmp_path: Path) -> None:
    db, (one, two, three) = cli_db
    year = "2026"
    bad = tmp_path / "bad.csv"
    bad.write_text(f"person,year,score,absence_months\n{one},{year},40,0\n{two},{year},abc,0\n",
                   encoding="utf-8")
    refused = run(db, "assess", "import", str(bad))
    assert refused.returncode == 2
    assert refused.stderr == f"error: {bad}:3: column score: 'abc' is not a whole number\n"
    assert json.loads(run(db, "assess", "show", str(one), "--format", "json").stdout) == []

    good = tmp_path / "good.csv"
    good.write_text(f"person,year,score,absence_months\n{one},{year},80,4\n{two},{year},90,0\n"
                    f"{three},{year},55,1\n", encoding="utf-8")
    done = run(db, "assess", "import", str(good))
    assert (done.returncode, done.stdout) == (0, f"3 assessment(s) recorded from {good}\n")
    shown = json.loads(run(db, "--lang", "en", "assess", "show", str(two), "--format", "json").stdout)
    assert [(r["score"], r["rating"], r["rating_label"]) for r in shown] == [(90, "excellent", "Excellent")]

    listed = json.loads(run(db, "--lang", "vi", "screen", "--year", year, "--format", "json").stdout)
    assert [(r["person_id"], r["grounds"]) for r in listed] == [(one, "absence_or_unpaid_dues")]
    assert listed[0]["reasons"] == "không sinh hoạt đảng 4 tháng trong năm (từ 3 tháng)"
    opened = run(db, "screen", "--year", year, "--open")
    assert opened.returncode == 0, opened.stderr
    assert opened.stderr.strip() == "1 proposed, 0 already pending, 0 refused of 1 listed"
    again = run(db, "screen", "--year", year, "--open")
    assert again.stderr.strip() == "0 proposed, 1 already pending, 0 refused of 1 listed"
    assert run(db, "audit", "verify", actor="kiemtra").returncode == 0
    assert run(db, "audit", "replay", "--all", actor="kiemtra").returncode == 0


def test_assess_import_run_again_records_nothing_twice(world: World, tmp_path: Path) -> None:
    """A rerun (after a crash that lost the report, say) adds no row equal to the newest one
    of its member and year; a row that changed since is recorded, as a correction."""
    year = world.today.year
    one, two = world.members
    ratings = tmp_path / "ratings.csv"
    ratings.write_text(f"person,year,score,absence_months\n{one},{year},75,1\n{two},{year},80,0\n",
                       encoding="utf-8")
    screening = Screening(world.service)
    assert screening.record_file("secretary", ratings) == (2, 0)
    assert screening.record_file("secretary", ratings) == (0, 2)
    assert [len(assessments(world, p)) for p in (one, two)] == [1, 1]
    ratings.write_text(f"person,year,score,absence_months\n{one},{year},75,1\n{two},{year},80,3\n",
                       encoding="utf-8")
    assert screening.record_file("secretary", ratings) == (1, 1)
    assert [[r["absence_months"] for r in assessments(world, p)] for p in (one, two)] == [[1], [0, 3]]


def test_assessments_are_append_only_in_the_database(world: World) -> None:
    from memberflow.errors import Conflict, Unavailable
    from sqlalchemy import text

    record(world, world.members[0], world.today.year, 80)
    for statement in ("UPDATE assessments SET score = 100", "DELETE FROM assessments"):
        with pytest.raises((Conflict, Unavailable)), world.store.db.write() as conn:
            conn.execute(text(statement))
    assert [r["score"] for r in assessments(world, world.members[0])] == [80]


def test_screen_open_stopped_by_a_storage_failure_reports_what_it_proposed_and_resumes(
        world: World, db_url: str) -> None:
    """A second connection holds what a proposal needs past its timeout part-way: the run
    stops (exit 6; it does not wait the timeout out again on every later member) having
    printed each proposal it committed, and says where and how many; run again, it skips
    those (pending) and proposes the rest, none twice."""
    from interruptions import storage_fails_during

    year = world.today.year
    members = [world.register_member(f"Đảng viên vắng {n}") for n in range(60)]
    Screening(world.service).record("secretary", [
        YearRecord(person, year, 75, None, {"absence_months": 4}) for person in members])
    listed = Screening(world.service).screen(year)
    cases = [m.case_id for m in listed]
    assert len(cases) == len(members)
    command = [str(Path(sys.executable).parent / "memberflow"), "--actor", "department", "screen",
               "--year", str(year), "--open", "--format", "json"]
    world.store.close()
    with storage_fails_during(login_url(db_url, "department"), "propose_removal", 5, cases[5]) as url:
        stopped = subprocess.run([command[0], "--db", url, *command[1:]], capture_output=True,
                                 text=True, timeout=120)
    assert stopped.returncode == 6, stopped.stderr

    def proposals() -> list[int]:
        return [sum(e["trigger"] == "propose_removal" for e in world.store.cases.history(c))
                for c in cases]

    made = sum(proposals())
    assert 5 <= made < len(cases)
    if db_url.startswith("postgresql"):
        assert made == 5
    assert proposals() == [1] * made + [0] * (len(cases) - made)
    assert [(r["case_id"], r["outcome"]) for r in json.loads(stopped.stdout)] == \
        [(c, "moved") for c in cases[:made]]
    stop = stopped.stderr.splitlines()[-1]
    assert stop.startswith(f"error: stopped at row {made + 1} (case {cases[made]}): ")
    assert stop.endswith(f"; {made} proposal(s) made and committed before it; run it again to "
                         "continue (pending proposals are skipped)")

    again = subprocess.run([command[0], "--db", login_url(db_url, "department"), *command[1:]],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert again.stderr.strip() == (f"{len(cases) - made} proposed, {made} already pending, 0 refused "
                                    f"of {len(cases)} listed")
    assert proposals() == [1] * len(cases)
