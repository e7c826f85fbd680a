"""``Service.advance_many``: many moves in one transaction, all or nothing, on both backends."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from typing import Any

import pytest
from conftest import ACTING, World, acting
from memberflow.app.service import AdvanceRequest
from memberflow.errors import MoveRefused, NotPermitted
from memberflow.storage.verification import verify


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


# -- case advance-many from a CSV file ----------------------------------------------------------
def run_many(world: World, *args: str) -> Any:
    from click.testing import CliRunner
    from memberflow.cli import main

    return CliRunner().invoke(main, [*acting(world.store.url, "secretary"), "case",
                                     "advance-many", *args])


def write_csv(tmp_path: Any, text: str, encoding: str = "utf-8") -> str:
    path = tmp_path / "moves.csv"
    path.write_bytes(text.encode(encoding))
    return str(path)


def test_advance_many_reports_every_row_and_commits_the_good_ones(world: World, tmp_path: Any) -> None:
    on = world.ago(months=19)
    good = [world.open_case() for _ in range(2)]
    moved_already = world.open_case()
    world.step(moved_already, "record_training", on)
    certificate = (on - timedelta(days=3)).strftime("%d/%m/%Y")
    csv_file = write_csv(tmp_path, "case,date,certificate_date,doc:CN-NTVĐ\n"
                         f"{good[0]},{on:%d/%m/%Y},{certificate},GCN-01/Đảng ủy\n"
                         f"{moved_already},{on:%d/%m/%Y},{certificate},GCN-02\n"
                         f"abc,{on:%d/%m/%Y},{certificate},GCN-03\n"
                         f"{good[1]},{on:%d/%m/%Y},{certificate},GCN-04\n")
    result = run_many(world, "record_training", csv_file, "--format", "json")
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert [(r["row"], r["case_id"], r["outcome"]) for r in rows] == [
        (2, good[0], "moved"), (3, moved_already, "refused"), (4, None, "bad row"), (5, good[1], "moved")]
    assert rows[0]["detail"] == "candidate → trained (event 2)"
    assert rows[1]["detail"].startswith(f"case {moved_already}: you already made record_training at ")
    assert rows[2]["detail"] == "column case: 'abc' is not a case number"
    assert "2 moved, 0 already done, 1 refused, 1 bad row of 4 rows" in result.stderr
    for case_id, ref in ((good[0], "GCN-01/Đảng ủy"), (good[1], "GCN-04")):
        assert world.store.cases.load(case_id).state == "trained"
        assert [d["reference"] for d in world.store.cases.documents(case_id)] == [ref]
    assert verify(world.store.db).ok


def test_a_row_naming_no_case_is_a_bad_row_and_the_run_goes_on(world: World, tmp_path: Any) -> None:
    """Issue 19 item 1: the case moved before the unknown one is reported, and the rest runs;
    with --all-or-nothing nothing is written."""
    on = world.ago(months=19)
    first, last = world.open_case(), world.open_case()
    missing = last + 1000
    certificate = (on - timedelta(days=3)).strftime("%d/%m/%Y")
    csv_file = write_csv(tmp_path, "case,date,certificate_date,doc:CN-NTVĐ\n"
                         f"{first},{on:%d/%m/%Y},{certificate},GCN-01\n"
                         f"{missing},{on:%d/%m/%Y},{certificate},GCN-02\n"
                         f"{last},{on:%d/%m/%Y},{certificate},GCN-03\n")
    whole = run_many(world, "record_training", csv_file, "--all-or-nothing")
    assert whole.exit_code == 2 and whole.stdout == ""
    assert whole.stderr == f"error: row 3: case {missing} not found\n"
    assert {world.store.cases.load(c).state for c in (first, last)} == {"candidate"}
    result = run_many(world, "record_training", csv_file, "--format", "json")
    assert result.exit_code == 1, result.output
    rows = json.loads(result.stdout)
    assert [(r["row"], r["case_id"], r["outcome"]) for r in rows] == [
        (2, first, "moved"), (3, missing, "bad row"), (4, last, "moved")]
    assert rows[1]["detail"] == f"case {missing} not found"
    assert "2 moved, 0 already done, 0 refused, 1 bad row of 3 rows" in result.stderr
    assert {world.store.cases.load(c).state for c in (first, last)} == {"trained"}


def test_advance_many_all_or_nothing_writes_nothing_when_a_row_is_refused(world: World,
                                                                          tmp_path: Any) -> None:
    on = world.ago(months=19)
    good, stale = world.open_case(), world.open_case()
    world.step(stale, "reject_application", on)
    before = world.store.cases.count_events()
    csv_file = write_csv(tmp_path, "case,certificate_date,doc:CN-NTVĐ\n"
                         f"{good},{on - timedelta(days=3):%d/%m/%Y},GCN\n"
                         f"{stale},{on - timedelta(days=3):%d/%m/%Y},GCN\n")
    result = run_many(world, "record_training", csv_file, "--date", f"{on:%d/%m/%Y}", "--all-or-nothing")
    assert result.exit_code == 1
    assert f"case {stale}: " in result.stderr
    assert world.store.cases.count_events() == before
    assert world.store.cases.load(good).state == "candidate"
    certificate = on - timedelta(days=3)
    ok = write_csv(tmp_path, f"case,certificate_date,doc:CN-NTVĐ\n{good},{certificate:%d/%m/%Y},GCN\n")
    done = run_many(world, "record_training", ok, "--date", f"{on:%d/%m/%Y}", "--all-or-nothing")
    assert done.exit_code == 0, done.output
    assert world.store.cases.load(good).state == "trained"


@pytest.mark.parametrize(("content", "encoding", "message"), [
    ("case,certificate_date\n1,01/01/2026,extra\n", "utf-8", "moves.csv:2: 3 fields, the header has 2"),
    ("id,certificate_date\n1,01/01/2026\n", "utf-8", "moves.csv:1: the header must have a 'case' column"),
    ("case,case\n1,2\n", "utf-8", "moves.csv:1: column 'case' appears twice in the header"),
    ("case,reason\n1,ok\n2,Không\n", "latin-1", "moves.csv:3: not UTF-8 text"),
])
def test_advance_many_refuses_a_bad_file_before_doing_anything(world: World, tmp_path: Any, content: str,
                                                               encoding: str, message: str) -> None:
    world.open_case()
    before = world.store.cases.count_events()
    result = run_many(world, "record_training", write_csv(tmp_path, content, encoding))
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert world.store.cases.count_events() == before


# -- nothing applied twice: request keys ---------------------------------------------------------
FAILED_VOTE = "record_failed_branch_vote"


def vote_rows(world: World, rows: list[tuple[int, int]], extra: str = "") -> str:
    """A failed-vote file: (case, votes for) of 10, with the document each vote needs."""
    header = "case,votes_for,votes_eligible,doc:6-KNĐ" + (f",{extra}" if extra else "")
    return header + "\n" + "".join(f"{case},{votes},10,BB-{case}-{n}\n" for n, (case, votes) in
                                   enumerate(rows))


def failed_votes(world: World, case_id: int) -> list[dict[str, Any]]:
    return [e for e in world.store.cases.history(case_id) if e["trigger"] == FAILED_VOTE]


def outcomes(result: Any) -> list[tuple[int, int | None, str]]:
    return [(r["row"], r["case_id"], r["outcome"]) for r in json.loads(result.stdout)]


@pytest.fixture(params=["driver", "core"])
def write_path(request: pytest.FixtureRequest, world: World) -> str:
    """Both move paths of ``Store``: the driver-level hot path, and the SQLAlchemy Core path
    any other database takes (chosen here by dropping the store's driver SQL)."""
    if request.param == "core":
        world.store._sql = None
    return request.param


def test_running_a_file_again_reports_rows_already_done_and_records_no_vote_twice(
        world: World, tmp_path: Any, write_path: str) -> None:
    """A failed vote leaves the case where it is, so nothing in the case tells a rerun that it
    was recorded: the row's request key does. Two identical rows are two votes, recognised as
    such on the rerun; the rerun writes nothing and exits 0."""
    from click.testing import CliRunner
    from memberflow.cli import main
    from memberflow.workflow.dates import format_timestamp

    first, second, third = world.verified_cases(3)
    on = world.ago(months=16)
    csv_file = write_csv(tmp_path, vote_rows(world, [(first, 5), (second, 6), (first, 5), (third, 4)])
                         .replace(f"BB-{first}-2", f"BB-{first}-0"))  # rows 2 and 4: identical
    args = [FAILED_VOTE, csv_file, "--date", f"{on:%d/%m/%Y}", "--format", "json"]
    done = run_many(world, *args)
    assert done.exit_code == 0, done.output
    assert outcomes(done) == [(2, first, "moved"), (3, second, "moved"), (4, first, "moved"),
                              (5, third, "moved")]
    events = world.store.cases.count_events()

    again = CliRunner().invoke(main, [*acting(world.store.url, "secretary"), "case",
                                      "advance-many", *args])
    assert again.exit_code == 0, again.output
    assert outcomes(again) == [(2, first, "already done"), (3, second, "already done"),
                               (4, first, "already done"), (5, third, "already done")]
    recorded = failed_votes(world, first) + failed_votes(world, second) + failed_votes(world, third)
    details = [r["detail"] for r in json.loads(again.stdout)]
    assert sorted(details) == sorted(
        f"already done by you at {format_timestamp(e['recorded_at'])} (event {e['seq']}); nothing written"
        for e in recorded)
    assert again.stderr == "0 moved, 4 already done, 0 refused, 0 bad row of 4 rows\n"
    assert world.store.cases.count_events() == events
    assert [len(failed_votes(world, c)) for c in (first, second, third)] == [2, 1, 1]

    other = CliRunner().invoke(main, [*acting(world.store.url, "committee"), "case",
                                      "advance-many", *args])
    assert other.exit_code == 0  # another officer running the file learns who did it
    assert json.loads(other.stdout)[0]["detail"].startswith("already done by secretary at ")
    assert world.store.cases.count_events() == events
    assert verify(world.store.db, workers=1).ok


def test_fixing_a_refused_row_and_running_the_file_again_applies_only_that_row(
        world: World, tmp_path: Any, write_path: str) -> None:
    """The key is the row's own, not the file's: editing one row leaves the others' keys."""
    cases = world.verified_cases(3)
    on = f"{world.ago(months=16):%d/%m/%Y}"
    csv_file = write_csv(tmp_path, vote_rows(world, [(cases[0], 5), (cases[1], 9), (cases[2], 4)]))
    first = run_many(world, FAILED_VOTE, csv_file, "--date", on, "--format", "json")
    assert first.exit_code == 1
    assert [o for _, _, o in outcomes(first)] == ["moved", "refused", "moved"]

    csv_file = write_csv(tmp_path, vote_rows(world, [(cases[0], 5), (cases[1], 3), (cases[2], 4)]))
    second = run_many(world, FAILED_VOTE, csv_file, "--date", on, "--format", "json")
    assert second.exit_code == 0, second.output
    assert [o for _, _, o in outcomes(second)] == ["already done", "moved", "already done"]
    assert [len(failed_votes(world, c)) for c in cases] == [1, 1, 1]


def test_the_same_rows_are_recognised_whatever_the_column_order_blank_cells_and_spacing(
        world: World, tmp_path: Any) -> None:
    """A derived key reads what the row asks for, not how the file is laid out; a rerun the
    next day without --date is the same request (no date was given either time)."""
    (case_id,) = world.verified_cases(1)
    first = run_many(world, FAILED_VOTE, write_csv(
        tmp_path, f"case,votes_for,votes_eligible,doc:6-KNĐ\n{case_id},5,10,BB-1\n"))
    assert first.exit_code == 0, first.output
    again = run_many(world, FAILED_VOTE, write_csv(
        tmp_path, f"doc:6-KNĐ,note,votes_eligible,case,votes_for\n BB-1 ,, 10,{case_id}, 5\n"),
        "--format", "json")
    assert again.exit_code == 0, again.output
    assert outcomes(again) == [(2, case_id, "already done")]
    assert len(failed_votes(world, case_id)) == 1


def test_a_request_id_column_names_each_request(world: World, tmp_path: Any, write_path: str) -> None:
    """An explicit request_id is the key: two otherwise identical rows with different ids are
    two votes, a row whose id was applied is already done even if its cells changed, and an id
    given twice for one case refuses the file before anything is written."""
    (case_id,) = world.verified_cases(1)
    on = f"{world.ago(months=16):%d/%m/%Y}"
    rows = f"case,request_id,votes_for,votes_eligible,doc:6-KNĐ\n{case_id},BB-7,5,10,BB\n"
    twice = write_csv(tmp_path, rows + rows.splitlines()[1] + "\n")
    refused = run_many(world, FAILED_VOTE, twice, "--date", on)
    assert refused.exit_code == 2
    assert refused.stderr.strip() == (f"error: {twice}:3: request_id 'BB-7' of case {case_id} is "
                                      "also on row 2")
    assert failed_votes(world, case_id) == []

    two = write_csv(tmp_path, rows + f"{case_id},BB-8,5,10,BB\n")
    done = run_many(world, FAILED_VOTE, two, "--date", on, "--format", "json")
    assert [o for _, _, o in outcomes(done)] == ["moved", "moved"]
    changed = write_csv(tmp_path, f"case,request_id,votes_for,votes_eligible,doc:6-KNĐ\n"
                                  f"{case_id},BB-8,4,10,BB-x\n")
    again = run_many(world, FAILED_VOTE, changed, "--date", on, "--format", "json")
    assert again.exit_code == 0
    assert outcomes(again) == [(2, case_id, "already done")]
    assert len(failed_votes(world, case_id)) == 2
    assert [json.loads(e["payload"])["inputs"]["votes_for"] for e in failed_votes(world, case_id)] == [5, 5]


def test_request_keys_are_kept_with_their_events_under_the_chain_and_unique_per_case(
        world: World, tmp_path: Any, write_path: str) -> None:
    """The key is in the event's payload (covered by the hash chain) and in its own column,
    which the database keeps unique per case; a move made one at a time has none."""
    from memberflow.errors import RequestKeyTaken
    from memberflow.storage.cases import EventDraft

    first, second = world.verified_cases(2)
    done = run_many(world, FAILED_VOTE, write_csv(tmp_path, vote_rows(world, [(first, 5)])),
                    "--date", f"{world.ago(months=16):%d/%m/%Y}")
    assert done.exit_code == 0, done.output
    event = world.store.cases.history(first)[-1]
    key = event["request_key"]
    assert re.fullmatch(r"[0-9a-f]{64}", key) and json.loads(event["payload"])["request_key"] == key
    assert all(e["request_key"] is None for e in world.store.cases.history(first)[:-1])

    def record(case_id: int) -> None:
        with world.store.db.write() as conn:
            case = world.store.cases.load(case_id, conn, for_move=True)
            payload = {k: v for k, v in json.loads(event["payload"]).items() if k != "request_key"}
            draft = EventDraft("move", FAILED_VOTE, "secretary", "branch_secretary",
                               event["business_date"], payload, request_key=key)
            world.store.cases.record_move_in(conn, case, case.state, case.facts, None, draft, {})

    before = world.store.cases.history(first)
    with pytest.raises(RequestKeyTaken):
        record(first)
    assert world.store.cases.history(first) == before
    record(second)  # unique per case: another case may hold the same key
    assert world.store.cases.history(second)[-1]["request_key"] == key
    assert verify(world.store.db, workers=1).ok
    assert world.service.replay_all(workers=1).divergent == []


def test_all_or_nothing_recognises_rows_already_done(world: World, tmp_path: Any,
                                                    write_path: str) -> None:
    """One transaction for the file, and still nothing twice: a file applied (atomically or
    not) and run again with --all-or-nothing writes only the rows not yet done."""
    cases = world.verified_cases(3)
    on = f"{world.ago(months=16):%d/%m/%Y}"
    part = write_csv(tmp_path, vote_rows(world, [(cases[0], 5), (cases[1], 4)]))
    assert run_many(world, FAILED_VOTE, part, "--date", on).exit_code == 0
    whole = write_csv(tmp_path, vote_rows(world, [(cases[0], 5), (cases[1], 4), (cases[2], 3)]))
    done = run_many(world, FAILED_VOTE, whole, "--date", on, "--all-or-nothing", "--format", "json")
    assert done.exit_code == 0, done.output
    assert [o for _, _, o in outcomes(done)] == ["already done", "already done", "moved"]
    again = run_many(world, FAILED_VOTE, whole, "--date", on, "--all-or-nothing", "--format", "json")
    assert [o for _, _, o in outcomes(again)] == ["already done"] * 3
    assert [len(failed_votes(world, c)) for c in cases] == [1, 1, 1]
    assert verify(world.store.db, workers=1).ok


def test_a_row_naming_an_unknown_case_is_that_rows_result(world: World, tmp_path: Any) -> None:
    """A case that does not exist is the row's trouble: it is reported and the rest go on
    (it used to end the whole run, after committing the rows before it, unreported)."""
    cases = world.verified_cases(2)
    csv_file = write_csv(tmp_path, vote_rows(world, [(cases[0], 5), (999_999, 5), (cases[1], 5)]))
    result = run_many(world, FAILED_VOTE, csv_file, "--date", f"{world.ago(months=16):%d/%m/%Y}",
                      "--format", "json")
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert [r["outcome"] for r in rows] == ["moved", "bad row", "moved"]
    assert rows[1]["detail"] == "case 999999 not found"


def test_table_output_is_a_header_then_one_line_per_row(world: World, tmp_path: Any) -> None:
    (case_id,) = world.verified_cases(1)
    csv_file = write_csv(tmp_path, vote_rows(world, [(case_id, 5)]) + "x,1,10,BB\n")
    result = run_many(world, FAILED_VOTE, csv_file, "--date", f"{world.ago(months=16):%d/%m/%Y}")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["row", "case_id", "outcome", "detail"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split()[:3] == ["2", str(case_id), "moved"]
    assert lines[3].split()[:3] == ["3", "-", "bad"]
    assert len(lines) == 4


# -- person import from a CSV file ----------------------------------------------------------------
def run_import(world: World, path: Any, actor: str = "secretary") -> Any:
    from click.testing import CliRunner
    from memberflow.cli import main

    return CliRunner().invoke(main, [*acting(world.store.url, actor), "person", "import",
                                     str(path)])


PEOPLE_CSV = ("\ufefffull_name,birth_date,gender,ethnicity,education,youth_union\n"
              "Lê Thị Mỹ Duyên,05/09/1999,nữ,Tày,university,có\n"
              "Hoàng Văn Nam,1998-12-01,male,,,no\n")


def test_person_import_registers_everyone_with_vietnamese_text_intact(world: World, tmp_path: Any) -> None:
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE_CSV, encoding="utf-8")
    before = len(world.store.directory.people())
    result = run_import(world, path)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("imported 2 people (#")
    first, second = (int(n) for n in re.findall(r"#(\d+)", result.stdout))
    duyen, nam = world.store.directory.person(first), world.store.directory.person(second)
    assert (duyen["full_name"], duyen["gender"], duyen["ethnicity"], duyen["education"],
            duyen["youth_union"], duyen["birth_date"]) == \
        ("Lê Thị Mỹ Duyên", "female", "Tày", "university", True, date(1999, 9, 5))
    assert (nam["gender"], nam["ethnicity"], nam["religion"], nam["education"], nam["youth_union"]) == \
        ("male", "Kinh", "Không", "upper_secondary", False)

    again = run_import(world, path)  # a rerun imports no one twice, and says it was done
    assert again.exit_code == 0, again.output
    assert again.stdout == (f"already done: all 2 people of {path} are registered "
                            f"(#{first}–#{second}); nothing imported\n")
    assert len(world.store.directory.people()) == before + 2

    path.write_text(PEOPLE_CSV + "Trần Văn Ba,01/01/2000,nam,,,\n", encoding="utf-8")
    mixed = run_import(world, path)  # someone registered next to someone new: refused as before
    assert mixed.exit_code == 2
    assert "people.csv:2: Lê Thị Mỹ Duyên born 05/09/1999 is already registered as #" in mixed.stderr
    assert "(and 1 more problems); nothing imported" in mixed.stderr
    assert len(world.store.directory.people()) == before + 2


def test_person_import_with_a_bad_row_imports_no_one(world: World, tmp_path: Any) -> None:
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE_CSV + "Trần Văn Ba,31/02/2000,nam,,,\nTrần Văn Tư,01/01/2000,robot,,,\n"
                    "Hoàng Văn Nam,01/12/1998,nam,,,\n", encoding="utf-8")
    before = len(world.store.directory.people())
    result = run_import(world, path)
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}:4: column birth_date ")
    assert lines[0].endswith("(and 2 more problems); nothing imported")
    assert len(world.store.directory.people()) == before
    auditor = run_import(world, tmp_path / "people.csv", actor="outsider")
    assert auditor.exit_code == 2  # still the file's problems first: nothing is written either way


@pytest.mark.parametrize(("command", "header", "row"), [
    (["person", "import"], "full_name,birth_date", "{cell},01/01/1990"),
    (["assess", "import"], "person,year,score", "1,2025,{cell}"),
    (["case", "advance-many", "record_training"], "case,certificate_date", "1,{cell}"),
])
def test_a_cell_over_the_csv_field_limit_is_bad_input_naming_line_and_column(
        world: World, tmp_path: Any, command: list[str], header: str, row: str) -> None:
    """Every CSV reader (people, assessments, moves): a cell longer than the csv module's
    limit (131,072 characters) is the file's line and column, exit 2, nothing written."""
    from click.testing import CliRunner
    from memberflow.cli import main

    path = tmp_path / "big.csv"
    cell = '"' + "Đ" * 131_073 + '"'
    path.write_text(f"{header}\n{row.format(cell='1')}\n{row.format(cell=cell)}\n", encoding="utf-8")
    before = (world.store.cases.count_events(), len(world.store.directory.people()))
    result = CliRunner().invoke(main, [*acting(world.store.url, "secretary"), *command,
                                       str(path)])
    column = header.split(",")[row.split(",").index("{cell}")]
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    assert result.stderr == (f"error: {path}:3: column {column} is 131073 characters long; at "
                             "most 131072 allowed\n")
    assert (world.store.cases.count_events(), len(world.store.directory.people())) == before
