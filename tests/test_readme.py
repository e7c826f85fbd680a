"""The README's tour runs as printed: every shell block of "A tour of the CLI", in order,
against a fresh demo database in a temporary folder, through the real ``memberflow``
command. Where the README shows a command's output (a ``$ memberflow …`` line followed by
what it prints), the output is checked (dates, which move with today, aside); a shown
``refused:`` or ``error:`` is a command that must fail that way. ``$ cat FILE`` shows a
file the tour uses: it is written as shown."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import postgresql_schema

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
ENTRY_POINT = Path(sys.executable).parent / "memberflow"
DATE = re.compile(r"\b\d{2}/\d{2}/\d{4}( \d{2}:\d{2})?\b")  # days and times move with today


EXIT = re.compile(r"#.*\(exit (\d+)\)")  # a command meant to fail says so in its comment


@dataclass
class Step:
    line: int  # in README.md
    words: list[str]
    shown: list[str] | None = None  # the output the README prints, if it does
    exit: int | None = 0  # None: fails, as the output shown says


def section(start: str, end: str) -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index(start):text.index(end)]


def steps(text: str | None = None) -> list[Step]:
    """Every command of the shell blocks and shown sessions of ``text`` (the tour), in order."""
    text = text or section("## A tour of the CLI", "### Exit codes")
    offset = README.read_text(encoding="utf-8").index(text)
    found: list[Step] = []
    for block in re.finditer(r"```(sh)?\n(.*?)```", text, re.S):
        first = README.read_text(encoding="utf-8")[:offset + block.start(2)].count("\n") + 1
        lines = block.group(2).replace("\\\n", " ").splitlines()
        if lines and lines[0].startswith("$ "):
            found += session(first, lines)
        elif block.group(1) == "sh":
            for n, line in enumerate(lines):
                if shlex.split(line, comments=True):
                    code = EXIT.search(line)
                    found.append(Step(first + n, shlex.split(line, comments=True),
                                      exit=int(code.group(1)) if code else 0))
    return found


def session(first: int, lines: list[str]) -> list[Step]:
    """``$ command`` lines and what each prints; a shown refusal or error is a failure."""
    found: list[Step] = []
    for n, line in enumerate(lines):
        if line.startswith("$ "):
            found.append(Step(first + n, shlex.split(line[2:], comments=True), []))
        elif found:
            found[-1].shown.append(line)
    for step in found:
        if step.shown and step.shown[0].startswith(("refused:", "error:")):
            step.exit = None
    return found


def test_the_tour_has_the_blocks_of_every_kind_of_user() -> None:
    commands = [" ".join(s.words[:3]) for s in steps()]
    for expected in ("memberflow case advance", "memberflow audit verify", "memberflow org add",
                     "memberflow assess show", "memberflow report admissions", "memberflow user link"):
        assert any(c.startswith(expected) for c in commands), expected


@pytest.fixture(scope="module")
def office(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh folder with ``make demo``'s database and the repository's files the tour names."""
    folder = tmp_path_factory.mktemp("readme")
    for shipped in ("definitions", "docs"):
        (folder / shipped).symlink_to(ROOT / shipped)
    built = subprocess.run([str(ENTRY_POINT), "demo", "--db", "memberflow-demo.db"], cwd=folder,
                           capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    return folder


def test_every_command_of_the_tour_runs_as_printed(office: Path) -> None:
    env = {**os.environ, "MEMBERFLOW_LANG": "vi", "MEMBERFLOW_DB": "memberflow-demo.db"}
    env.pop("MEMBERFLOW_ACTOR", None)
    for step in steps():
        where = f"README.md:{step.line}: {' '.join(step.words)}"
        if step.words[0] == "export":
            env.update(word.split("=", 1) for word in step.words[1:])
            continue
        if step.words[0] == "cat":
            (office / step.words[1]).write_text("\n".join(step.shown or []) + "\n", encoding="utf-8")
            continue
        assert step.words[0] == "memberflow", where
        done = subprocess.run([str(ENTRY_POINT), *step.words[1:]], cwd=office, env=env,
                              capture_output=True, text=True, timeout=300)
        if step.exit is None:
            assert done.returncode not in (0, 70), f"{where}\nexit {done.returncode}: {done.stdout}"
        else:
            assert done.returncode == step.exit, f"{where}\nexit {done.returncode}: {done.stderr}"
        if step.shown:
            printed = (done.stdout + done.stderr).rstrip("\n").splitlines()
            assert [DATE.sub("DATE", line) for line in printed] == \
                [DATE.sub("DATE", line) for line in step.shown], where


def test_the_diagram_in_the_readme_is_the_bundled_definitions(tmp_path: Path) -> None:
    """Regenerated from definitions/membership.yaml, it must be what the README embeds."""
    shown = re.search(r"```mermaid\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert shown is not None
    drawn = subprocess.run([str(ENTRY_POINT), "--lang", "en", "definition", "graph",
                            str(ROOT / "definitions" / "membership.yaml"), "--format", "mermaid"],
                           capture_output=True, text=True, timeout=60, check=True).stdout
    assert shown.group(1) == drawn, "regenerate it: memberflow --lang en definition graph " \
        "definitions/membership.yaml --format mermaid"


def test_the_postgresql_block_runs_where_a_server_answers(tmp_path: Path) -> None:
    """The README's PostgreSQL commands on a schema of the test server (the block's example
    URL stands for it; installing the driver is make's job here)."""
    block = steps(section("### Running on PostgreSQL", "**Bounded waits.**"))
    assert [s.words[:2] for s in block][:2] == [["pip", "install"], ["export", block[1].words[1]]]
    with postgresql_schema() as url:
        env = {**os.environ, "MEMBERFLOW_DB": url, "MEMBERFLOW_LANG": "en"}
        for step in block[2:]:
            assert step.words[0] == "memberflow", step.line
            done = subprocess.run([str(ENTRY_POINT), *step.words[1:]], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=300)
            assert done.returncode == step.exit, f"README.md:{step.line}: {done.stderr}"
