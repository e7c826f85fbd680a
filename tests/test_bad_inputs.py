"""A corpus of bad inputs (data in tests/bad_inputs/), each checked end to end.

Every bad definition file, command line and database target must exit with its documented
code, say why in one line (plus the documented extra lines of a refusal or of definition
problems), never show a traceback, and change nothing: the database is compared byte for byte
and by SQL dump before and after, and `audit verify` must still pass.

Real subprocesses of the installed entry point run every --db target, every special path
(device, FIFO), one `definition validate` over all definition files at once, and a subset of
the command lines; the rest goes through click's runner to keep the module fast. SQLite only.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import resource
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterable, Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest
import yaml
from click.testing import CliRunner
from conftest import CLI_BLOC
from memberflow.cli import main
from memberflow.workflow.dates import format_date, today

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
DEFINITION_FILES = CORPUS / "definitions"
VALID_DEFINITION = DEFINITION_FILES / "valid_minimal.yaml"
ENTRY_POINT = Path(sys.executable).parent / "memberflow"
# Neither the runner nor a subprocess may pick up a database, actor or debug flag from outside.
# The corpus checks the English text of each message (Vietnamese is the default; the
# catalogues are held complete by test_messages).
SUBPROCESS_ENV = {**{key: value for key, value in os.environ.items() if not key.startswith("MEMBERFLOW_")},
                  "MEMBERFLOW_LANG": "en"}
RUNNER_ENV: Mapping[str, str | None] = {"MEMBERFLOW_DB": None, "MEMBERFLOW_ACTOR": None,
                                         "MEMBERFLOW_DEBUG": None, "MEMBERFLOW_LANG": "en"}
SQL = "'; DROP TABLE cases; --"
WRITE = ["person", "add", "--name", "Nguyễn Văn An", "--birth-date", "01/01/1990", "--gender", "male"]
PROBLEM_LINE = re.compile(r"  .+:\d+: .+")


class _ManifestLoader(yaml.SafeLoader):
    """Plain YAML where 2026-13-01 stays text: dates in the corpus are inputs, not values."""


_ManifestLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def _load(name: str) -> list[dict[str, Any]]:
    cases = yaml.load((CORPUS / name).read_text(encoding="utf-8"), Loader=_ManifestLoader)
    for case in cases:
        for args in [case.get("args", []), case.get("read", []), *(a for a, _ in case.get("setup", []))]:
            assert all(isinstance(arg, str) for arg in args), (name, case)
    return cases


def _definition_id(case: Mapping[str, Any]) -> str:
    return str(case.get("id") or Path(case.get("file", "")).stem)


def _params(cases: Iterable[dict[str, Any]], name: Callable[[Mapping[str, Any]], str]) -> list[Any]:
    def marks(case: Mapping[str, Any]) -> list[Any]:
        return [pytest.mark.xfail(strict=True, reason=case["xfail"])] if "xfail" in case else []

    return [pytest.param(case, id=name(case), marks=marks(case)) for case in cases]


DEFINITION_CASES = _load("definitions.yaml")
CLI_CASES = _load("cli.yaml")
DATABASE_CASES = _load("databases.yaml")
STORED_CASES = _load("stored.yaml")


# -- running memberflow -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.stdout[-2000:]}\n--- stderr\n{self.stderr[-2000:]}"


def run(db: Path | str | None, args: list[str], actor: str | None = None, runner: str = "click",
        cwd: Path | None = None, env: Mapping[str, str] | None = None, timeout: float = 120,
        preexec: Callable[[], None] | None = None) -> Outcome:
    """memberflow [--db DB] [--actor ACTOR] ARGS, through click's runner or a real subprocess."""
    prefix = (["--db", str(db)] if db is not None else []) + (["--actor", actor] if actor is not None else [])
    if runner == "subprocess":
        done = subprocess.run([str(ENTRY_POINT), *prefix, *args], capture_output=True, cwd=cwd,
                              env=dict(env or SUBPROCESS_ENV), timeout=timeout, preexec_fn=preexec)
        return Outcome(done.returncode, done.stdout.decode("utf-8", "replace"),
                       done.stderr.decode("utf-8", "replace"))
    result = CliRunner(env=RUNNER_ENV).invoke(main, [*prefix, *args])
    escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not escaped, f"exception escaped the CLI: {result.exception!r}"
    return Outcome(result.exit_code, result.stdout, result.stderr)


def _no_traceback(out: Outcome) -> None:
    assert "Traceback" not in out.stdout + out.stderr, str(out)


def check_error(out: Outcome, case: Mapping[str, Any]) -> None:
    """The documented exit code and error shape: one line (usage errors too), or a refusal
    with its reasons."""
    _no_traceback(out)
    codes = case["code"] if isinstance(case["code"], list) else [case["code"]]
    assert out.code in codes, str(out)
    lines = out.stderr.splitlines()
    assert lines, str(out)
    if case.get("usage"):
        assert len(lines) == 1 and lines[0].startswith("error: "), str(out)
        assert lines[0].endswith(" (see --help)"), str(out)
        assert re.search(case["error"], lines[0][len("error: "):]), str(out)
        return
    assert re.search(case["stdout"], out.stdout) if "stdout" in case else out.stdout == "", str(out)
    if out.code == 1:
        assert lines[0].startswith("refused: "), str(out)
        assert re.search(case["error"], lines[0][len("refused: "):]), str(out)
        reasons = lines[1:]
        assert all(line.startswith("  - ") for line in reasons), str(out)
        expected = case.get("reasons", [])
        assert len(reasons) == len(expected), str(out)
        for pattern, line in zip(expected, reasons, strict=True):
            assert re.search(pattern, line[len("  - "):]), (pattern, str(out))
        return
    assert len(lines) == 1, f"the error must be one line\n{out}"
    assert lines[0].startswith("error: "), str(out)
    assert re.search(case["error"], lines[0][len("error: "):]), (case["error"], str(out))


def check_definition_problems(out: Outcome, name: str, case: Mapping[str, Any],
                              severity: str = "") -> None:
    """Exit 2, "error: definition has N problem(s)", then exactly N lines "  FILE:LINE: message",
    one of them the case's problem on the case's line."""
    _no_traceback(out)
    assert out.code == 2, str(out)
    lines = out.stderr.splitlines()
    header = re.fullmatch(r"error: definition has (\d+) problem\(s\)", lines[0] if lines else "")
    assert header, str(out)
    problems = lines[1:]
    assert int(header.group(1)) == len(problems), str(out)
    assert all(PROBLEM_LINE.fullmatch(line) for line in problems), str(out)
    wanted = re.compile(rf"  {re.escape(name)}:{case['line']}: {severity}(?P<message>.*)")
    assert any((m := wanted.fullmatch(line)) and re.search(case["message"], m["message"])
               for line in problems), (wanted.pattern, case["message"], str(out))


# -- the database every case starts from --------------------------------------------------------------
@dataclass(frozen=True)
class Template:
    path: Path
    ids: dict[str, str]


def _ok(db: Path, args: list[str], actor: str | None = None) -> str:
    out = run(db, args, actor)
    assert out.code == 0, (args, str(out))
    return out.stdout


def _checkpoint(db: Path) -> None:
    """Fold the WAL into the database file, so that its bytes say everything."""
    with closing(sqlite3.connect(db)) as conn:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    assert busy == 0, "could not checkpoint the WAL"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    """An initialized database built through the CLI: organizations, officers of every role
    the cases need, two official members, a case in background_verified and one just opened."""
    db = tmp_path_factory.mktemp("template") / "memberflow.db"
    _ok(db, ["init", "--admin", "quantri", "--admin-name", "Trịnh Công Minh"])
    for args in (
        *CLI_BLOC,
        ["user", "add", "dauy", "--name", "Lê Văn Tám"],
        ["user", "grant", "dauy", "grassroots_committee", "--org", "SGD"],
        ["user", "add", "btv", "--name", "Phan Thị Lan"],
        ["user", "grant", "btv", "standing_committee_above", "--org", "DBK"],
    ):
        _ok(db, args, "quantri")
    day = today()

    def ago(days: int) -> str:
        return format_date(day - timedelta(days=days))

    def person(name: str, born: str) -> str:
        out = _ok(db, ["person", "add", "--name", name, "--birth-date", born, "--gender", "female",
                       "--youth-union"], "bithu")
        return out.split("#")[1].split()[0]

    def case(person_id: str, actor: str, on: str) -> str:
        return _ok(db, ["case", "open", person_id, "--org", "VP", "--date", on], actor).split()[1]

    members, official = [], ""
    for name in ("Đảng viên Một", "Đảng viên Hai"):
        members.append(person(name, "01/01/1970"))
        case_id = case(members[-1], "btc", ago(400))
        official = official or case_id
        _ok(db, ["case", "advance", case_id, "register_existing_member", "-i", "admission_date=2000-05-19",
                 "-i", "official_since=2001-05-19", "-i", "party_card_number=001", "--date", ago(400)], "btc")
    applicant = person("Lê Thị Mỹ Duyên", "05/09/1999")
    verified = case(applicant, "bithu", ago(120))
    _ok(db, ["case", "advance", verified, "record_training", "-i", f"certificate_date={ago(125)}",
             "-d", "CN-NTVĐ=GCN 45/2026", "--date", ago(110)], "bithu")
    _ok(db, ["case", "advance", verified, "prepare_dossier",
             "-i", f"introducers={members[0]}:24,{members[1]}:36",
             "-d", "1-KNĐ", "-d", "2-KNĐ", "-d", "3-KNĐ", "--date", ago(100)], "bithu")
    _ok(db, ["case", "advance", verified, "verify_background",
             "-i", "verification_conclusion=Lý lịch rõ ràng", "-d", "2-KNĐ", "--date", ago(90)], "dauy")
    newcomer = person("Võ Quang Huy", "01/01/1990")
    opened = case(newcomer, "bithu", ago(30))
    _checkpoint(db)
    ids = {"member": members[0], "case_official": official, "case_bv": verified, "person_new": newcomer,
           "case_new": opened, "next_person": str(int(newcomer) + 1), "next_case": str(int(opened) + 1)}
    return Template(db, ids)


def fresh_copy(template: Template, folder: Path) -> Path:
    db = folder / "memberflow.db"
    shutil.copy(template.path, db)  # with its mode: owner only, as init made it
    return db


@dataclass(frozen=True)
class Snapshot:
    main: bytes
    dump: list[str]


def snapshot(db: Path) -> Snapshot:
    """The database file's bytes and SQL dump, with every earlier write folded into the file."""
    _checkpoint(db)
    with closing(sqlite3.connect(db)) as conn:
        dump = list(conn.iterdump())
    return Snapshot(db.read_bytes(), dump)


def assert_unchanged(db: Path, before: Snapshot) -> None:
    """Nothing written: no WAL frames, the same file bytes, the same dump; the chain verifies.

    Connections click's runner left open are harmless: a write would sit in the WAL (frames),
    or, had a closing connection checkpointed it, in the file's bytes."""
    wal = Path(f"{db}-wal")
    assert not wal.exists() or wal.stat().st_size == 0, "the command wrote to the WAL"
    assert db.read_bytes() == before.main, "the database file changed"
    with closing(sqlite3.connect(db)) as conn:
        assert list(conn.iterdump()) == before.dump, "the database content changed"
    assert_verifies(db)


def assert_verifies(db: Path) -> None:
    """`memberflow audit verify` exits 0. On one worker: forking a pool per case would cost more
    than the whole case (the chains checked are the same)."""
    with patch.object(os, "cpu_count", return_value=1):
        verified = run(db, ["audit", "verify"], "kiemtra")
    assert verified.code == 0 and "all chains intact" in verified.stdout, str(verified)


_PLACEHOLDER = re.compile(r"\{(\w+)(?::(\w+))?\}")


def fill(text: str, values: Mapping[str, str]) -> str:
    def one(match: re.Match[str]) -> str:
        name, argument = match.groups()
        if name == "long":
            return "Đ" * int(argument)
        if name == "byte":  # what Python makes of an undecodable argv byte (PEP 383)
            return chr(0xDC00 + int(argument, 16))
        return values[name]

    return _PLACEHOLDER.sub(one, text)


CSV_FOLDER = Path(__file__).parent / "bad_inputs" / "csv"


def placeholders(template: Template, folder: Path, db: Path) -> dict[str, str]:
    day = today()
    garbage = folder / "garbage.txt"
    garbage.write_text("biên bản họp chi bộ, không phải checkpoint\n", encoding="utf-8")
    return {**template.ids, "today": format_date(day), "yesterday": format_date(day - timedelta(days=1)),
            "tomorrow": format_date(day + timedelta(days=1)), "tmp": str(folder), "garbage": str(garbage),
            "template": str(db), "valid_definition": str(VALID_DEFINITION), "sql": SQL,
            "csv": str(CSV_FOLDER)}


# -- bad definitions ----------------------------------------------------------------------------------
def generate_definition(recipe: Mapping[str, Any], target: Path) -> None:
    """Inputs too big, too binary or too deep to keep in the repository, from a small recipe."""
    base = VALID_DEFINITION.read_bytes()
    lines = base.split(b"\n")
    kind = recipe["kind"]
    if kind == "oversize":  # the valid file padded with comment lines to exactly N bytes
        size = recipe["bytes"]
        with target.open("wb") as out:
            out.write(base)
            left = size - len(base)
            out.write((b"# " + b"x" * 97 + b"\n") * (left // 100))
            if left % 100:
                out.write(b"#" * (left % 100 - 1) + b"\n")
        assert target.stat().st_size == size
        return
    if kind == "utf16":
        data = base.decode("utf-8").encode("utf-16")
    elif kind == "invalid_byte":
        lines[recipe["line"] - 1] += b" caf" + bytes([recipe["byte"]])
        data = b"\n".join(lines)
    elif kind == "raw_character":  # inside the last flow mapping of the line
        line = lines[recipe["line"] - 1]
        lines[recipe["line"] - 1] = line[:-1] + bytes([recipe["character"]]) + line[-1:]
        data = b"\n".join(lines)
    elif kind == "deep_flow":
        depth = recipe["depth"]
        data = base + b"x: " + b"[" * depth + b"]" * depth + b"\n"
    elif kind == "deep_block":
        depth = recipe["depth"]
        data = base + "".join(f"{'  ' * i}k{i}:\n" for i in range(depth)).encode() + b"  " * depth + b"leaf\n"
    elif kind == "long_key":
        data = base + b"x" * recipe["length"] + b": 1\n"
    elif kind == "long_name":
        data = base.replace(b"name: tiny", b"name: " + b"t" * recipe["length"], 1)
    else:
        raise AssertionError(f"unknown recipe {kind!r}")
    target.write_bytes(data)


def materialize(case: Mapping[str, Any], folder: Path) -> tuple[str, Path | None]:
    """The definition file as the test's folder holds it (name as given on the command line),
    and the marker a code-running tag would create."""
    if "path" in case:
        if case["path"] == "{fifo}":
            fifo = folder / "pipe.yaml"
            os.mkfifo(fifo)
            return str(fifo), None
        return case["path"], None
    marker = folder / "pwned" if case.get("marker") else None
    if "generate" in case:
        name = f"{_definition_id(case)}.yaml"
        generate_definition(case["generate"], folder / name)
        return name, marker
    name = case["file"]
    data = (DEFINITION_FILES / name).read_bytes()
    if marker is not None:
        assert b"@@MARKER@@" in data, f"{name} has no @@MARKER@@"
        data = data.replace(b"@@MARKER@@", str(marker).encode())
    (folder / name).write_bytes(data)
    return name, marker


def _limits(case: Mapping[str, Any]) -> Callable[[], None] | None:
    megabytes = case.get("memory_limit_mb")
    if megabytes is None:
        return None

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (megabytes << 20, megabytes << 20))

    return limit


def validate(name: str, case: Mapping[str, Any], folder: Path) -> Outcome:
    """`definition validate`: a special path (device, FIFO) in a subprocess under a time and
    memory limit; a file through click's runner (all files also go through the entry point at
    once in test_every_bad_definition_through_the_entry_point)."""
    if "path" in case:
        return run(None, ["definition", "validate", name], runner="subprocess", cwd=folder,
                   timeout=case.get("timeout", 120), preexec=_limits(case))
    return run(None, ["definition", "validate", name])


@pytest.mark.parametrize("case", _params(DEFINITION_CASES, _definition_id))
def test_bad_definition(case: dict[str, Any], template: Template, tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    name, marker = materialize(case, tmp_path)
    commands = case.get("commands", ["validate", "lint", "publish"])
    lint_only, strict = case.get("lint_only", False), ["--strict"] if case.get("strict") else []
    if "validate" in commands:
        validated = validate(name, case, tmp_path)
        if lint_only:
            assert validated.code == 0 and f"{name}: ok (" in validated.stdout, str(validated)
        else:
            check_definition_problems(validated, name, case)
            assert validated.stdout == "", str(validated)
    if {"lint", "publish"} & set(commands):
        db = fresh_copy(template, tmp_path)
        before = snapshot(db)
        linted = run(db, ["definition", "lint", name, *strict], "quantri")
        if lint_only:
            severity = "warning" if strict else "error"
            _no_traceback(linted)
            assert linted.code == 2, str(linted)
            finding = re.compile(rf"{re.escape(name)}:{case['line']}: {severity}: (?P<message>.*)")
            assert any((m := finding.fullmatch(line)) and re.search(case["message"], m["message"])
                       for line in linted.stdout.splitlines()), str(linted)
            assert linted.stderr == f"error: lint found {'problems' if strict else 'errors'} in {name}\n", \
                str(linted)
        else:
            check_definition_problems(linted, name, case)
        published = run(db, ["definition", "publish", name, "--comment", "x", *strict], "quantri")
        check_definition_problems(published, name, case, "(error|warning): " if lint_only else "")
        assert published.stdout == "", str(published)
        assert_unchanged(db, before)
    if marker is not None:
        assert not marker.exists(), "a YAML tag ran code"


def test_every_bad_definition_through_the_entry_point(tmp_path: Path) -> None:
    """One real `memberflow definition validate FILE...` over every file of the corpus (the known
    bugs aside): each file's problem is reported under its name and line, lint-only files pass,
    and no Python tag runs."""
    cases = [case for case in DEFINITION_CASES if "xfail" not in case and "path" not in case]
    names, markers = zip(*(materialize(case, tmp_path) for case in cases), strict=True)
    out = run(None, ["definition", "validate", *names], runner="subprocess", cwd=tmp_path)
    for case, name in zip(cases, names, strict=True):
        if case.get("lint_only"):
            assert f"{name}: ok (" in out.stdout, (name, str(out))
        else:
            check_definition_problems(out, name, case)
    assert not any(marker.exists() for marker in markers if marker is not None), "a YAML tag ran code"


def test_the_control_definition_is_valid(template: Template, tmp_path: Path) -> None:
    """Every bad file is valid_minimal.yaml with one defect: the control itself must pass all three."""
    db = fresh_copy(template, tmp_path)
    assert run(None, ["definition", "validate", str(VALID_DEFINITION)]).code == 0
    linted = run(db, ["definition", "lint", "--strict", str(VALID_DEFINITION)], "quantri")
    assert linted.code == 0 and "0 errors, 0 warnings" in linted.stdout, str(linted)
    published = run(db, ["definition", "publish", "--strict", str(VALID_DEFINITION), "--comment", "x"],
                    "quantri")
    assert published.code == 0 and published.stderr == "", str(published)


def test_every_corpus_file_is_used_once() -> None:
    files = {case["file"] for case in DEFINITION_CASES if "file" in case}
    on_disk = {path.name for path in DEFINITION_FILES.glob("*.yaml")} - {VALID_DEFINITION.name}
    assert files == on_disk
    for cases, name in ((DEFINITION_CASES, _definition_id), (CLI_CASES, lambda c: c["id"]),
                        (DATABASE_CASES, lambda c: c["id"]), (STORED_CASES, lambda c: c["id"])):
        ids = [name(case) for case in cases]
        assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert len(DEFINITION_CASES) + len(CLI_CASES) + len(DATABASE_CASES) >= 110


# -- bad command lines --------------------------------------------------------------------------------
@pytest.mark.parametrize("case", _params(CLI_CASES, lambda case: case["id"]))
def test_bad_command_line(case: dict[str, Any], template: Template, tmp_path: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = fresh_copy(template, tmp_path)
    values = placeholders(template, tmp_path, db)
    for name, content in case.get("files", {}).items():
        (tmp_path / name).write_text(fill(content, values), encoding="utf-8")
    for args, actor in case.get("setup", []):
        _ok(db, [fill(arg, values) for arg in args], actor)
    before = snapshot(db)
    out = run(db, [fill(arg, values) for arg in case["args"]], case.get("actor"),
              case.get("runner", "click"), cwd=tmp_path, timeout=case.get("timeout", 120))
    check_error(out, case)
    assert_unchanged(db, before)


# -- bad --db targets ---------------------------------------------------------------------------------
def _without_dac_override() -> None:
    """In the child: drop CAP_DAC_OVERRIDE, so that even root cannot write a 0444 file."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(24, 1, 0, 0, 0) != 0:  # PR_CAPBSET_DROP, CAP_DAC_OVERRIDE
        raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE)")


def prepare_target(kind: str | None, target: Path, template: Template) -> Callable[[], None] | None:
    """Put the named kind of thing at ``target``; returns what the child must run first, if anything."""
    if kind in (None, "missing"):
        return None
    if kind == "directory":
        target.mkdir()
    elif kind == "text_file":
        target.write_text("biên bản họp chi bộ\n", encoding="utf-8")
    elif kind == "empty_file":
        target.touch()
    elif kind in ("foreign_sqlite", "foreign_alembic"):
        with closing(sqlite3.connect(target)) as conn:
            conn.execute("CREATE TABLE notes (body TEXT)")
            conn.execute("INSERT INTO notes VALUES ('biên bản họp chi bộ')")
            if kind == "foreign_alembic":  # another application that uses Alembic too
                conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
                conn.execute("INSERT INTO alembic_version VALUES ('abc123')")
            conn.commit()
    elif kind == "read_only":
        shutil.copyfile(template.path, target)
        target.chmod(0o400)
        if os.geteuid() != 0:
            return None
        probe = subprocess.run([sys.executable, "-c", f"open({str(target)!r}, 'ab')"],
                               capture_output=True, preexec_fn=_without_dac_override)
        if probe.returncode == 0:
            pytest.skip("running as root and CAP_DAC_OVERRIDE cannot be dropped: no read-only file")
        return _without_dac_override
    else:
        raise AssertionError(f"unknown target kind {kind!r}")
    return None


def _state(folder: Path) -> dict[str, Any]:
    """Every file under the folder with its bytes (directories as such)."""
    return {str(path.relative_to(folder)): "dir" if path.is_dir() else path.read_bytes()
            for path in sorted(folder.rglob("*"))}


@pytest.mark.parametrize("case", _params(DATABASE_CASES, lambda case: case["id"]))
def test_bad_database(case: dict[str, Any], template: Template, tmp_path: Path) -> None:
    folder = tmp_path / "where"
    folder.mkdir()
    target = folder / "target"
    preexec = prepare_target(case.get("prepare"), target, template)
    url = fill(case["target"], {"target": str(target), "tmp": str(folder)})
    before = _state(folder)
    env = dict(SUBPROCESS_ENV)
    if case.get("via") == "env":
        env["MEMBERFLOW_DB"] = url
    out = run(url if case.get("via", "flag") == "flag" else None, case.get("args", WRITE), "quantri",
              runner="subprocess", cwd=folder, env=env, timeout=60, preexec=preexec)
    check_error(out, {"code": 6, "error": case["error"]})
    assert _state(folder) == before, "the --db target or its folder changed"


# -- SQL metacharacters that are legitimate text ----------------------------------------------------
def _schema_and_counts(db: Path) -> tuple[list[Any], dict[str, int]]:
    with closing(sqlite3.connect(db)) as conn:
        schema = conn.execute("SELECT type, name, sql FROM sqlite_master ORDER BY type, name").fetchall()
        counts = {name: conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
                  for (kind, name, _) in schema if kind == "table"}
    return schema, counts


@pytest.mark.parametrize("case", _params(STORED_CASES, lambda case: case["id"]))
def test_sql_metacharacters_are_stored_verbatim(case: dict[str, Any], template: Template, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    db = fresh_copy(template, tmp_path)
    payload = case.get("payload", SQL)
    values = {**placeholders(template, tmp_path, db), "sql": payload}
    schema, counts = _schema_and_counts(db)
    out = run(db, [fill(arg, values) for arg in case["args"]], case["actor"])
    _no_traceback(out)
    assert out.code == 0, str(out)
    shown = run(db, [fill(arg, values) for arg in case["read"]], "kiemtra")
    assert shown.code == 0, str(shown)
    assert payload in json.dumps(json.loads(shown.stdout), ensure_ascii=False), str(shown)
    schema_after, counts_after = _schema_and_counts(db)
    assert schema_after == schema, "the schema changed"
    assert counts_after.keys() == counts.keys()
    assert all(counts_after[name] >= n for name, n in counts.items()), (counts, counts_after)
    assert_verifies(db)
