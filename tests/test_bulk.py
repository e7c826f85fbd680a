"""``Service.advance_many``: many moves in one transaction, all or nothing, on both backends."""

from __future__ import annotations

import json
import re
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


# -- case advance-many from a CSV file ----------------------------------------------------------
def run_many(world: World, *args: str) -> Any:
    from click.testing import CliRunner

    from cli import main

    return CliRunner().invoke(main, ["--db", world.store.url, "--actor", "secretary", "case",
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
    assert "not possible from state trained" in rows[1]["detail"] or "just moved" in rows[1]["detail"]
    assert rows[2]["detail"] == "column case: 'abc' is not a case number"
    assert "2 moved, 1 refused, 1 bad row of 4 rows" in result.stderr
    for case_id, ref in ((good[0], "GCN-01/Đảng ủy"), (good[1], "GCN-04")):
        assert world.store.cases.load(case_id).state == "trained"
        assert [d["reference"] for d in world.store.cases.documents(case_id)] == [ref]
    assert verify(world.store.db).ok


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


# -- person import from a CSV file ----------------------------------------------------------------
def run_import(world: World, path: Any, actor: str = "secretary") -> Any:
    from click.testing import CliRunner

    from cli import main

    return CliRunner().invoke(main, ["--db", world.store.url, "--actor", actor, "person", "import",
                                     str(path)])


PEOPLE_CSV = ("\ufefffull_name,birth_date,gender,ethnicity,education,youth_union\n"
              "Lê Thị Mỹ Duyên,05/09/1999,nữ,Tày,university,có\n"
              "Hoàng Văn Nam,1998-12-01,male,,,no\n")


def test_person_import_registers_everyone_with_vietnamese_text_intact(world: World, tmp_path: Any) -> None:
    path = tmp_path / "people.csv"
    path.write_text(PEOPLE_CSV, encoding="utf-8")
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

    again = run_import(world, path)  # a rerun imports no one twice
    assert again.exit_code == 2
    assert "people.csv:2: Lê Thị Mỹ Duyên born 05/09/1999 is already registered as #" in again.stderr
    assert "(and 1 more problems); nothing imported" in again.stderr


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

    from cli import main

    path = tmp_path / "big.csv"
    cell = '"' + "Đ" * 131_073 + '"'
    path.write_text(f"{header}\n{row.format(cell='1')}\n{row.format(cell=cell)}\n", encoding="utf-8")
    before = (world.store.cases.count_events(), len(world.store.directory.people()))
    result = CliRunner().invoke(main, ["--db", world.store.url, "--actor", "secretary", *command,
                                       str(path)])
    column = header.split(",")[row.split(",").index("{cell}")]
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    assert result.stderr == (f"error: {path}:3: column {column} is 131073 characters long; at "
                             "most 131072 allowed\n")
    assert (world.store.cases.count_events(), len(world.store.directory.people())) == before
