"""The CLI end to end: click's runner for breadth, real subprocesses where it matters."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import AUDITOR, CLI_BLOC, acting
from memberflow.cli import main

ENTRY_POINT = Path(sys.executable).parent / "memberflow"
DEMO_AUDITOR = "kiemtoan"  # the demo database's auditor


def run(db: Path, *args: str, actor: str | None = AUDITOR) -> Result:
    """The CLI as an officer meets it: in its default language (Vietnamese); reads act as the
    bloc's auditor unless told otherwise."""
    return CliRunner(env={"MEMBERFLOW_LANG": None}).invoke(main, [*acting(str(db), actor), *args])


@pytest.fixture
def bloc(db_path: Path) -> Path:
    """An initialized database with a branch, its officers and two official members."""
    result = run(db_path, "init", "--admin", "quantri", "--admin-name", "Trịnh Công Minh", actor=None)
    assert result.exit_code == 0, result.stderr
    for args in CLI_BLOC:
        result = run(db_path, *args, actor="quantri")
        assert result.exit_code == 0, (args, result.output, result.stderr)
    return db_path


def add_person(db: Path, name: str, born: str) -> int:
    result = run(db, "--lang", "en", "person", "add", "--name", name, "--birth-date", born, "--gender",
                 "female", "--youth-union", actor="bithu")
    assert result.exit_code == 0, result.stderr
    return int(result.output.split("#")[1].split()[0])


def open_case(db: Path, person: int, actor: str, date: str) -> int:
    result = run(db, "--lang", "en", "case", "open", str(person), "--org", "VP", "--date", date, actor=actor)
    assert result.exit_code == 0, result.stderr
    return int(result.output.split()[1])


def test_applicant_flow_with_inputs_documents_and_json(bloc: Path) -> None:
    applicant = add_person(bloc, "Lê Thị Mỹ Duyên", "05/09/1999")
    case_id = open_case(bloc, applicant, "bithu", "01/02/2026")
    moved = run(bloc, "case", "advance", str(case_id), "record_training", "-i",
                "certificate_date=20/01/2026", "-d", "CN-NTVĐ=GCN 45/2026", "--date", "03/02/2026",
                "--format", "json", actor="bithu")
    assert moved.exit_code == 0, moved.stderr
    assert json.loads(moved.output)["to"] == "trained"

    shown = json.loads(run(bloc, "case", "show", str(case_id), "--format", "json").output)
    assert shown["state"] == "trained" and shown["stage"] == "application"
    assert shown["label"] == "Đã học lớp nhận thức về Đảng"
    assert shown["facts"]["certificate_date"] == "2026-01-20"

    history = json.loads(run(bloc, "case", "history", str(case_id), "--format", "json").output)
    assert [e["trigger"] for e in history] == ["open", "record_training"]
    assert history[1]["documents"] == {"CN-NTVĐ": "GCN 45/2026"}
    assert history[1]["business_date"] == "2026-02-03"
    assert history[1]["prev_hash"] == history[0]["hash"]
    assert history[1]["evidence"]["applicant"]["full_name"] == "Lê Thị Mỹ Duyên"
    assert len(history[1]["definition_sha256"]) == 64

    table = run(bloc, "case", "history", str(case_id))
    assert "Đã học lớp nhận thức về Đảng" in table.output


def test_available_lists_moves_with_reasons(bloc: Path) -> None:
    too_young = add_person(bloc, "Trần Minh Khôi", "10/01/2010")
    case_id = open_case(bloc, too_young, "bithu", "01/02/2026")
    result = run(bloc, "case", "available", str(case_id), "--format", "json", actor="bithu")
    assert result.exit_code == 0, result.stderr
    moves = {row["move"]: row for row in json.loads(result.output)}
    assert set(moves) == {"record_training", "reject_application", "withdraw_application",
                          "register_existing_member"}
    assert moves["record_training"]["status"] == "ready"
    assert moves["record_training"]["needs_inputs"] == "certificate_date"
    assert moves["register_existing_member"]["status"] == "not your role"


def test_refusal_is_exit_1_with_each_reason_and_writes_nothing(bloc: Path) -> None:
    applicant = add_person(bloc, "Võ Quang Huy", "01/01/1990")
    case_id = open_case(bloc, applicant, "bithu", "01/02/2026")
    before = run(bloc, "case", "history", str(case_id), "--format", "json").output
    result = run(bloc, "--lang", "en", "case", "advance", str(case_id), "record_training", "-i",
                 "certificate_date=01/01/2020", "--date", "03/02/2026", actor="bithu")
    assert result.exit_code == 1
    assert "refused: move record_training is refused" in result.stderr
    assert "valid for 60 months" in result.stderr
    assert "document CN-NTVĐ must be attached with this move" in result.stderr
    assert run(bloc, "case", "history", str(case_id), "--format", "json").output == before


@pytest.mark.parametrize(
    ("args", "actor", "code", "message"),
    [
        (["case", "show", "999"], AUDITOR, 4, "case 999 not found"),
        (["case", "advance", "1", "fly_away"], "bithu", 2, "has no move 'fly_away'"),
        (["case", "advance", "1", "record_training", "-i", "certificate_date=31/02/2026"], "bithu",
         2, "does not exist"),
        (["case", "advance", "1", "register_existing_member"], "bithu", 5, "no role allowed"),
        (["case", "advance", "1", "record_training"], None, 5, "no one is named as acting"),
        (["case", "advance", "1", "record_training"], "ghost", 4, "user ghost not found"),
        (["org", "add", "VP", "--name", "x", "--kind", "branch"], "quantri", 2, "already exists"),
        (["org", "add", "X", "--name", "x", "--kind", "branch", "--parent", "VP"], "bithu", 5,
         "bithu is not an administrator at VP or above"),
        (["org", "add", "X", "--name", "x", "--kind", "branch"], None, 5, "no one is named as acting"),
        (["user", "add", "mallory", "--name", "M"], "bithu", 5, "not an administrator"),
        (["user", "grant", "bithu", "standing_committee_above", "--org", "TU"], "bithu", 5,
         "not an administrator"),
        (["user", "grant", "bithu", "pope", "--org", "VP"], "quantri", 2, "unknown role 'pope'"),
        (["user", "grant", "bithu", "branch_secretary"], "quantri", 2, "give --org"),
        (["person", "add", "--name", "A", "--birth-date", "01/01/1990", "--gender", "male"],
         "kiemtra", 5, "holds no officer or administrator role"),
        (["person", "add", "--name", "", "--birth-date", "01/01/1990", "--gender", "male"], "bithu",
         2, "name is empty"),
        (["person", "add", "--name", "A", "--birth-date", "2026-13-01", "--gender", "male"], "bithu",
         2, "'2026-13-01' does not exist"),
        (["case", "show", "99999999999999999999999"], None, 2, "not in the range"),
        (["case", "advance", "1", "hold_ceremony"], "bithu", 1, "not possible from state candidate"),
        (["case", "advance", "1", "record_training", "-i", "certificate_date=01/11/2026",
          "-d", "BOGUS"], "bithu", 2, "unknown document code 'BOGUS'"),
        (["case", "list", "--state", "bogus"], AUDITOR, 2, "unknown state 'bogus'"),
        (["init", "--admin", "other"], None, 1, "an administrator already exists"),
        (["case", "advance", "1", "record_training", "-i", "certificate_date=01/01/2026",
          "-d", "CN-NTVĐ", "--date", "01/01/2099"], "bithu", 2, "in the future"),
    ],
)
def test_errors_map_to_documented_exit_codes(bloc: Path, args: list[str], actor: str | None,
                                             code: int, message: str) -> None:
    person = add_person(bloc, "Phạm Đức Anh", "01/01/1995")
    assert open_case(bloc, person, "bithu", "01/02/2026") == 1
    result = run(bloc, "--lang", "en", *args, actor=actor)
    assert result.exit_code == code, (result.output, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.output


def test_missing_database_file_is_refused_not_created(tmp_path: Path) -> None:
    target = tmp_path / "typo.db"
    result = run(target, "--lang", "en", "case", "list")
    assert result.exit_code == 6
    assert "does not exist" in result.stderr
    assert not target.exists()


def test_listings_take_json_and_keep_vietnamese(bloc: Path) -> None:
    orgs = json.loads(run(bloc, "org", "list", "--format", "json").output)
    by_code = {o["code"]: o for o in orgs}
    assert by_code["SGD"]["name"] == "Đảng bộ Sở Giáo dục"
    assert by_code["SGD"]["parent_code"] == "DBK"
    users = json.loads(run(bloc, "user", "list", "--format", "json").output)
    assert {u["username"] for u in users} == {"quantri", "bithu", "btc", "kiemtra"}
    definitions = json.loads(run(bloc, "definition", "list", "--format", "json").output)
    assert [d["name"] for d in definitions] == ["membership"]
    shown = json.loads(run(bloc, "definition", "show", "membership", "--format", "json").output)
    assert len(shown["states"]) == 18


def test_init_twice_is_a_no_op(bloc: Path) -> None:
    result = run(bloc, "--lang", "en", "init")
    assert result.exit_code == 0
    assert "already installed" in result.output


def test_demo_as_real_subprocess_shows_all_four_stages(tmp_path: Path) -> None:
    target = tmp_path / "demo.db"
    result = subprocess.run([str(ENTRY_POINT), "demo", "--db", str(target)], capture_output=True,
                            text=True, encoding="utf-8", timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for stage in ("application", "probation", "official", "removal"):
        assert f"\n{stage} " in result.stdout
    assert "must be at least 18" in result.stdout
    assert "valid for 60 months" in result.stdout
    assert "Full history of case" in result.stdout

    listed = subprocess.run([str(ENTRY_POINT), "--db", str(target), "--actor", DEMO_AUDITOR, "case",
                             "list", "--format", "json"], capture_output=True, text=True,
                            encoding="utf-8", timeout=60)
    cases = json.loads(listed.stdout)
    assert len(cases) == 29
    states = {c["state"] for c in cases}
    assert {"official_member", "probationary", "struck_off", "application_withdrawn",
            "rejected"} <= states
    people = json.loads(subprocess.run(
        [str(ENTRY_POINT), "--db", str(target), "--actor", DEMO_AUDITOR, "person", "list", "--format",
         "json"], capture_output=True, text=True, encoding="utf-8", timeout=60, check=True).stdout)
    # A name with the middle name "Thị" is a woman's; the demo's people are born with theirs.
    assert len(people) > 20
    assert [p["full_name"] for p in people if (" Thị " in p["full_name"]) != (p["gender"] == "female")] \
        == []


def test_available_as_real_subprocess(tmp_path: Path) -> None:
    target = tmp_path / "demo.db"
    subprocess.run([str(ENTRY_POINT), "demo", "--db", str(target)], check=True,
                   capture_output=True, timeout=300)
    listed = json.loads(subprocess.run(
        [str(ENTRY_POINT), "--db", str(target), "--actor", DEMO_AUDITOR, "case", "list", "--state",
         "background_verified",
         "--format", "json"], capture_output=True, text=True, check=True).stdout)
    case_id = str(listed[0]["id"])
    org = listed[0]["organization"]
    secretary = {"SGD-VP": "bithu.vp", "SGD-THPT": "bithu.thpt", "SYT-BV": "bithu.bv",
                 "STC": "bithu.stc"}[org]
    result = subprocess.run([str(ENTRY_POINT), "--db", str(target), "case", "available",
                             case_id], capture_output=True, text=True, encoding="utf-8",
                            env={"MEMBERFLOW_ACTOR": secretary, "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    assert "record_branch_vote" in result.stdout
    assert "renew_training" in result.stdout


def test_demo_refuses_to_replace_a_file_that_is_not_a_demo(tmp_path: Path, bloc: Path) -> None:
    precious = tmp_path / "notes.txt"
    precious.write_text("biên bản họp chi bộ", encoding="utf-8")
    for target in (precious, bloc):
        before = target.read_bytes()
        result = CliRunner().invoke(main, ["demo", "--db", str(target)])
        assert result.exit_code == 2
        assert "is not a memberflow demo database" in result.stderr
        assert target.read_bytes() == before


def test_demo_builds_where_the_global_db_points(tmp_path: Path) -> None:
    target = tmp_path / "chosen.db"
    result = CliRunner().invoke(main, ["--db", str(target), "demo"])
    assert result.exit_code == 0, result.stderr
    assert target.exists()
    again = CliRunner().invoke(main, ["--db", str(target), "demo"])
    assert again.exit_code == 0, again.stderr


def test_lang_applies_to_every_command_that_shows_labels(bloc: Path) -> None:
    """``memberflow --lang en`` (or MEMBERFLOW_LANG) sets the default; a command's own --lang wins."""
    case_id = open_case(bloc, add_person(bloc, "Hồ Thị Ngọc", "02/02/1998"), "bithu", "01/02/2026")
    english, vietnamese = "Candidate", "Quần chúng ưu tú được giới thiệu"
    commands = [["case", "show", str(case_id)], ["case", "list"], ["case", "history", str(case_id)],
                ["definition", "show", "membership"], ["audit", "export", "--format", "jsonl"]]
    for args in commands:
        assert vietnamese in run(bloc, *args).output, args
        assert english in run(bloc, "--lang", "en", *args).output, args
        assert vietnamese in run(bloc, "--lang", "en", *args, "--lang", "vi").output, args
        from_env = CliRunner(env={"MEMBERFLOW_LANG": "en"}).invoke(main, [*acting(str(bloc), AUDITOR),
                                                                          *args])
        assert english in from_env.output, args
    available = run(bloc, "--lang", "en", "case", "available", str(case_id), "--format", "json",
                    actor="bithu")
    assert "Record the awareness course certificate" in available.output


@pytest.mark.parametrize("args", [
    ["org", "list"],
    ["definition", "show", "membership", "--format", "json"],  # more than a pipe buffer
    ["user", "list", "--format", "json"],
])
def test_output_into_a_closed_pipe_ends_quietly_as_in_unix_tools(bloc: Path, args: list[str]) -> None:
    """``memberflow … | head``: once the reader has gone, memberflow stops with no message and
    exit status 141 (128 + SIGPIPE), what a shell reports for ``yes | head`` too."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run([str(ENTRY_POINT), *acting(str(bloc), AUDITOR), *args], stdout=write_end,
                              stderr=subprocess.PIPE, timeout=60)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr.decode()) == (141, "")


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_init_and_demo_create_the_database_readable_by_its_owner_only(tmp_path: Path) -> None:
    """The file holds ethnicity, religion and disciplinary records: 0600, and so are the -wal
    and -shm files beside it, whatever the umask."""
    old = os.umask(0o022)
    try:
        db = tmp_path / "memberflow.db"
        assert run(db, "init", "--admin", "quantri", actor=None).exit_code == 0
        demo = tmp_path / "demo.db"
        built = subprocess.run([str(ENTRY_POINT), "demo", "--db", str(demo)], capture_output=True,
                               text=True, timeout=300, cwd=tmp_path)
        assert built.returncode == 0, built.stderr
    finally:
        os.umask(old)
    assert (mode(db), mode(demo)) == (0o600, 0o600)
    with closing(sqlite3.connect(db)) as reader:  # holds the WAL open while another process writes
        reader.execute("SELECT count(*) FROM cases").fetchone()
        added = subprocess.run([str(ENTRY_POINT), *acting(str(db), "quantri"), "user",
                                "add", "bithu", "--name", "Nguyễn Thị Hương"], capture_output=True,
                               text=True, timeout=60)
        assert (added.returncode, added.stderr) == (0, "")
        assert {name: mode(tmp_path / name) for name in ("memberflow.db-wal", "memberflow.db-shm")} \
            == {"memberflow.db-wal": 0o600, "memberflow.db-shm": 0o600}


def test_a_database_file_others_can_read_is_warned_about_and_left_as_it_is(bloc: Path) -> None:
    """Opening a database file group or others can read prints one warning line on stderr
    (the command still runs), and the file keeps its mode: changing it is the owner's call."""
    bloc.chmod(0o644)
    listed = subprocess.run([str(ENTRY_POINT), *acting(str(bloc), AUDITOR), "org", "list"],
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0 and "SGD" in listed.stdout
    assert listed.stderr == (f"warning: {bloc} can be read by other users (mode 0644) and holds "
                             f"personal records; restrict it: chmod 600 {bloc}*\n")
    assert mode(bloc) == 0o644
    bloc.chmod(0o600)
    quiet = subprocess.run([str(ENTRY_POINT), *acting(str(bloc), AUDITOR), "org", "list"],
                           capture_output=True, text=True, timeout=60)
    assert (quiet.returncode, quiet.stderr) == (0, "")
