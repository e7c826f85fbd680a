"""Who may read what, through the real CLI on SQLite and PostgreSQL: every read command for an
officer whose organization covers the case, an officer elsewhere, the auditor, an
administrator, a user with no grant and no one named. A refusal is exit 5, nothing on stdout
and one line on stderr naming the grant it takes; a listing shows only what its reader may
see."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import ADMISSION_PATH, AUDITOR, World, acting, is_postgresql_url
from memberflow.cli import main

INSIDE, OUTSIDE, ADMIN, NOBODY = "secretary", "outsider", "quantri", "nobody"
READERS = [INSIDE, OUTSIDE, AUDITOR, ADMIN, NOBODY, None]


@dataclass(frozen=True)
class Bloc:
    world: World
    running: int  # a case at VP with a deadline ahead
    admitted: int  # a case at VP admitted in ``year``
    person: int
    year: int


@pytest.fixture
def bloc(world: World) -> Bloc:
    world.store.directory.add_user(ADMIN, "Quản trị")
    world.store.directory.grant(ADMIN, "administrator", None)
    world.store.directory.add_user(NOBODY, "Chưa được giao quyền")
    running = world.open_case(on=world.ago(days=30))
    world.walk(running, ADMISSION_PATH[:4], world.ago(days=30), gap_days=1)
    admitted, ceremony = world.admitted_case()
    return Bloc(world, running, admitted, world.store.cases.load(running).person_id, ceremony.year)


def read(bloc: Bloc, who: str | None, *args: str) -> Result:
    return CliRunner().invoke(main, [*acting(bloc.world.store.url, who), "--lang", "en", *args])


def assert_refused(result: Result, who: str | None, grant: str, url: str) -> None:
    assert result.exit_code == 5, (who, result.output)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    if who is None:
        assert ("acts as no memberflow user" if is_postgresql_url(url)
                else "no one is named as acting") in lines[0]
    else:
        assert who in lines[0] and grant in lines[0], lines[0]


# -- reads of one case or person: an officer covering it, or the auditor ------------------
TARGETED: dict[str, Callable[[Bloc], list[str]]] = {
    "case show": lambda b: ["case", "show", str(b.running), "--format", "json"],
    "case show --as-of": lambda b: ["case", "show", str(b.running), "--as-of",
                                    b.world.today.strftime("%d/%m/%Y"), "--format", "json"],
    "case history": lambda b: ["case", "history", str(b.running), "--format", "json"],
    "case available": lambda b: ["case", "available", str(b.running), "--format", "json"],
    "person show": lambda b: ["person", "show", str(b.person), "--format", "json"],
    "assess show": lambda b: ["assess", "show", str(b.person), "--format", "json"],
}


@pytest.mark.parametrize("command", sorted(TARGETED))
def test_one_case_or_person_is_read_by_officers_covering_it_and_the_auditor(
        bloc: Bloc, command: str) -> None:
    for who in READERS:
        result = read(bloc, who, *TARGETED[command](bloc))
        if who in (INSIDE, AUDITOR):
            assert result.exit_code == 0, (who, result.output)
            json.loads(result.stdout)
        else:
            assert_refused(result, who, "holds no grant covering", bloc.world.store.url)


# -- listings: what the reader's grants cover, all of it for the auditor -------------------
def case_ids(rows: Any, key: str) -> set[int]:
    return {int(row[key]) for row in rows}


def jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


LISTINGS: dict[str, tuple[Callable[[Bloc], list[str]], Callable[[Bloc, str], bool]]] = {
    "case list": (lambda b: ["case", "list", "--format", "json"],
                  lambda b, out: b.running in case_ids(json.loads(out), "id")),
    "person list": (lambda b: ["person", "list", "--format", "json"],
                    lambda b, out: b.person in case_ids(json.loads(out), "id")),
    "due": (lambda b: ["due", "--within", "400", "--format", "json"],
            lambda b, out: b.running in case_ids(json.loads(out), "case")),
    "audit export": (lambda b: ["audit", "export", "--format", "jsonl"],
                     lambda b, out: b.admitted in case_ids(jsonl(out), "case_id")),
    "report admissions": (lambda b: ["report", "admissions", "--year", str(b.year), "--format", "json"],
                          lambda b, out: json.loads(out)["total"]["admitted"] > 0),
    "report durations": (lambda b: ["report", "durations", "--year", str(b.year), "--format", "json"],
                         lambda b, out: sum(r["moves"] for r in json.loads(out)["rows"]) > 0),
    "screen": (lambda b: ["screen", "--year", str(b.year), "--format", "json"],
               lambda b, out: isinstance(json.loads(out), list)),
}


@pytest.mark.parametrize("command", sorted(LISTINGS))
def test_a_listing_shows_what_the_readers_grants_cover(bloc: Bloc, command: str) -> None:
    args, shows_vp = LISTINGS[command]
    for who in READERS:
        result = read(bloc, who, *args(bloc))
        if who in (INSIDE, AUDITOR, OUTSIDE):
            assert result.exit_code == 0, (who, result.output)
            if command != "screen":
                assert shows_vp(bloc, result.stdout) == (who != OUTSIDE), (who, result.stdout)
        else:
            assert_refused(result, who, "holds no officer or auditor grant", bloc.world.store.url)


@pytest.mark.parametrize("command", sorted(set(LISTINGS) - {"person list"}))  # person list: no --org
def test_a_listing_of_an_organization_takes_a_grant_covering_it(bloc: Bloc, command: str) -> None:
    for who in READERS:
        result = read(bloc, who, *LISTINGS[command][0](bloc), "--org", "VP")
        if who in (INSIDE, AUDITOR):
            assert result.exit_code == 0, (who, result.output)
        else:
            grant = "holds no grant covering organization VP" if who != NOBODY else "holds no"
            assert_refused(result, who, grant, bloc.world.store.url)


# -- the record as a whole: auditors ----------------------------------------------------------
AUDIT = {"audit verify": ["audit", "verify"], "audit replay": ["audit", "replay", "--all"],
         "audit verify a case": ["audit", "verify", "--case", "1"]}


@pytest.mark.parametrize("command", sorted(AUDIT))
def test_verifying_and_replaying_the_record_takes_an_auditor(bloc: Bloc, command: str) -> None:
    for who in READERS:
        result = read(bloc, who, *AUDIT[command])
        if who == AUDITOR:
            assert result.exit_code == 0, (who, result.output)
        else:
            assert_refused(result, who, "takes an auditor grant", bloc.world.store.url)


# -- the directory: administrators and auditors; procedures and calendar: anyone with a grant
DIRECTORY = {"user list": ["user", "list", "--format", "json"]}
SHARED = {"calendar show": ["calendar", "show", "2026", "--format", "json"],
          "definition list": ["definition", "list", "--format", "json"],
          "definition show": ["definition", "show", "membership", "--format", "json"],
          "org list": ["org", "list", "--format", "json"]}


def test_the_users_and_their_grants_are_read_by_administrators_and_auditors(bloc: Bloc) -> None:
    for who in READERS:
        result = read(bloc, who, *DIRECTORY["user list"])
        if who in (ADMIN, AUDITOR):
            assert result.exit_code == 0, (who, result.output)
            assert {row["username"] for row in json.loads(result.stdout)} >= {INSIDE, AUDITOR}
        else:
            assert_refused(result, who, "holds no administrator or auditor grant", bloc.world.store.url)


@pytest.mark.parametrize("command", sorted(SHARED))
def test_procedures_calendar_and_organizations_are_read_by_anyone_holding_a_grant(
        bloc: Bloc, command: str) -> None:
    for who in READERS:
        result = read(bloc, who, *SHARED[command])
        if who in (INSIDE, OUTSIDE, AUDITOR, ADMIN):
            assert result.exit_code == 0, (who, result.output)
            json.loads(result.stdout)
        else:
            assert_refused(result, who, "holds no grant at all", bloc.world.store.url)
