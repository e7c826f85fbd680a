"""Officers working at the same time, as real OS processes, on SQLite and PostgreSQL.

Every test here starts real processes (the installed ``memberflow`` entry point, or a small
driver on the service) against one database and checks what landed: no move lost, none made
twice, every audit chain intact and replayable. Where the outcome depends on the processes
really meeting at the database, a *gate* makes sure they do: the parent holds what a move in
progress holds (on SQLite the database's write lock, on PostgreSQL the rows its locking read
locks) while the processes start, waits until all of them are queued behind it, then lets
go, so they race for it together.

Every wait has a timeout, so a deadlock fails the test instead of hanging the suite.
"""

from __future__ import annotations

import json
import os
import re
import select
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import ACTING, ADMISSION_PATH, AUDITOR, OFFICERS, World, acting, login_url
from memberflow.storage.database import BUSY_TIMEOUT_MS
from memberflow.storage.store import Store
from memberflow.workflow.dates import format_date
from sqlalchemy import create_engine, text

ENTRY_POINT = Path(sys.executable).parent / "memberflow"
RACERS = 4  # processes sending the same move at once
WAIT = 60.0  # seconds any process may take before the test calls it a deadlock
EXIT_OK, EXIT_REFUSED, EXIT_CONFLICT, EXIT_UNAVAILABLE = 0, 1, 3, 6
# The child environment: no debug tracebacks, and no database or actor but the ones we pass.
CHILD_ENV = {k: v for k, v in os.environ.items()
             if k not in ("MEMBERFLOW_DEBUG", "MEMBERFLOW_DB", "MEMBERFLOW_ACTOR")}


@dataclass(frozen=True)
class Step:
    trigger: str
    on: date
    inputs: dict[str, Any]
    documents: dict[str, str]
    to_state: str


@dataclass(frozen=True)
class Finished:
    actor: str
    code: int
    stdout: str
    stderr: str


def plan_path(world: World, case_id: int, triggers: Sequence[str], start: date,
              gap_days: int = 10) -> list[Step]:
    """The steps ``World.walk`` would make (same dates, inputs and documents), worked out
    from the definition up front so that no process has to read the case to build them."""
    record = world.store.cases.load(case_id)
    definition = world.service.definition(record.definition_id)
    state, steps = record.state, []
    for index, trigger in enumerate(triggers):
        transition = definition.transition(trigger, state)
        assert transition is not None, (trigger, state)
        on = start + timedelta(days=gap_days * index)
        state = transition.destination(state)
        steps.append(Step(trigger, on, world.inputs_for(trigger, on),
                          {code: f"{code}-ref" for code in transition.documents}, state))
    return steps


def advance_args(case_id: int, step: Step) -> list[str]:
    args = ["case", "advance", str(case_id), step.trigger, "--date", format_date(step.on),
            "--format", "json"]
    for name, value in step.inputs.items():
        args += ["--input", f"{name}={value}"]
    for code, reference in step.documents.items():
        args += ["--document", f"{code}={reference}"]
    return args


def launch(db: str, actor: str | None, *args: str) -> subprocess.Popen[str]:
    return launch_all(db, [actor], *args)[0]


def launch_all(db: str, actors: Sequence[str | None], *args: str) -> list[subprocess.Popen[str]]:
    """Start one process per actor back to back: every login is made before the first starts."""
    commands = [[str(ENTRY_POINT), *acting(db, actor), *args] for actor in actors]
    return [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             encoding="utf-8", env=CHILD_ENV) for command in commands]


def cli(db: str, *args: str, actor: str | None = None,
        timeout: float = WAIT) -> subprocess.CompletedProcess[str]:
    command = [str(ENTRY_POINT), *acting(db, actor), *args]
    return subprocess.run(command, capture_output=True, text=True, encoding="utf-8",
                          env=CHILD_ENV, timeout=timeout)


def finish(procs: Sequence[subprocess.Popen[str]], actors: Sequence[str]) -> list[Finished]:
    """Wait for every process; if one is still running after WAIT seconds, kill them all
    and fail (a deadlock, or a lock waited on for ever)."""
    deadline = time.monotonic() + WAIT
    results = []
    try:
        for proc, actor in zip(procs, actors, strict=True):
            out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            results.append(Finished(actor, proc.returncode, out, err))
    except subprocess.TimeoutExpired:
        for proc in procs:
            proc.kill()
            proc.communicate()
        pytest.fail(f"processes still running after {WAIT:.0f} s: deadlock or endless lock wait")
    return results


def read_line(proc: subprocess.Popen[str], expected: str, timeout: float = WAIT) -> None:
    """Wait for the child to print ``expected`` on a line of its own; fail, with what it said
    on stderr, if it prints anything else, ends, or stays silent for ``timeout`` seconds."""
    assert proc.stdout is not None and proc.stderr is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline() if ready else None
    if line is None or line.strip() != expected:
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"child printed {line!r}, not {expected!r}; stderr: {err}")


def verify(db: str) -> str:
    verified = cli(db, "audit", "verify", actor=AUDITOR)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "all chains intact" in verified.stdout
    return verified.stdout


def verify_and_replay(db: str, case_ids: Sequence[int]) -> None:
    verify(db)
    for case_id in case_ids:
        replayed = cli(db, "audit", "replay", str(case_id), actor=AUDITOR)
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert f"case {case_id}: replay matches the record" in replayed.stdout


def add_officers(world: World, count: int = RACERS) -> None:
    """``count`` more officers in each of conftest's posts: ``secretary.0``, ``secretary.1``..."""
    for officer, (role, org) in OFFICERS.items():
        for k in range(count):
            world.store.directory.add_user(f"{officer}.{k}", f"Cán bộ {officer} {k}")
            world.store.directory.grant(f"{officer}.{k}", role, org)


# -- the gate -----------------------------------------------------------------------------
def is_postgresql(db: str) -> bool:
    return db.startswith("postgresql")


def many_args(folder: Path, case_id: int, step: Step) -> list[str]:
    """``case advance-many --all-or-nothing`` making ``step`` on the case (one batch)."""
    inputs, documents = list(step.inputs.items()), list(step.documents.items())
    path = folder / "moves.csv"
    header = ["case", "date", *(n for n, _ in inputs), *(f"doc:{c}" for c, _ in documents)]
    row = [str(case_id), format_date(step.on), *(str(v) for _, v in inputs), *(r for _, r in documents)]
    path.write_text(f"{','.join(header)}\n{','.join(row)}\n", encoding="utf-8")
    return ["case", "advance-many", step.trigger, str(path), "--all-or-nothing"]


def with_option(db: str, option: str) -> str:
    """The test URL with one more server option for its sessions (``-c name=value``)."""
    assert "?options=" in db
    return db.replace("?options=", f"?options=-c%20{option.replace('=', '%3D')}%20", 1)


def tagged(db: str, tag: str) -> str:
    """The URL the children get: on PostgreSQL their sessions carry ``tag`` as application
    name, so the parent can see in pg_stat_activity when they are waiting on its lock, and
    wait for it up to a minute (the gate is held while the children start, which on a busy
    machine may take longer than the 5 s lock timeout)."""
    return f"{with_option(db, 'lock_timeout=60s')}&application_name={tag}" if is_postgresql(db) else db


def has_file_open(pid: int, path: str) -> bool:
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        entries = list(fd_dir.iterdir())
    except OSError:
        return False
    for entry in entries:
        try:
            if os.readlink(entry) == path:
                return True
        except OSError:
            continue
    return False


def wait_until_queued(db: str, tag: str, procs: Sequence[subprocess.Popen[str]],
                      timeout: float = 20.0) -> None:
    """Return once every process is queued on the lock the parent holds (kill them all and
    fail if they are not within ``timeout`` seconds).

    PostgreSQL says so exactly (the sessions wait on a lock). On SQLite a child waiting for
    the write lock is invisible, so: every child has opened the database file (its first
    read, moments before its write) and a moment has passed.
    """
    deadline = time.monotonic() + timeout

    def all_queued() -> bool:
        if is_postgresql(db):
            with engine.connect() as conn:
                waiting = conn.execute(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE application_name = :tag "
                    "AND wait_event_type = 'Lock'"), {"tag": tag}).scalar_one()
            return waiting == len(procs)
        return all(has_file_open(p.pid, os.path.realpath(db)) for p in procs)

    engine = create_engine(db) if is_postgresql(db) else None
    try:
        if engine is None and not Path("/proc/self/fd").exists():
            time.sleep(2.0)  # no /proc to look in: give them ample time instead
            return
        while not all_queued():
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                for proc in procs:
                    proc.kill()
                outcome = [(p.returncode, p.communicate()[1]) for p in procs]
                pytest.fail(f"not every process got queued at the gate: {outcome}")
            time.sleep(0.02)
        if engine is None:
            time.sleep(0.3)
    finally:
        if engine is not None:
            engine.dispose()


def new_tag() -> str:
    return f"mf_gate_{uuid.uuid4().hex[:12]}"


@contextmanager
def move_in_progress(db: str, case_id: int) -> Iterator[str]:
    """Hold what a move on the case holds between reading the case and committing (the write
    lock on SQLite; on PostgreSQL whatever its locking read locks) by running the store's own
    read for a move in an open transaction. Yields the tag for ``tagged``/``wait_until_queued``;
    leaving the block ends the transaction, writing nothing, and lets the queued moves go."""
    store = Store(db)
    try:
        with store.db.write() as conn:
            assert store.cases.load(case_id, conn, for_move=True).id == case_id
            yield new_tag()
    finally:
        store.close()


# -- 1. the same move on the same case --------------------------------------------------
def test_same_move_sent_by_four_officers_at_once_lands_exactly_once(world: World, db_url: str) -> None:
    """Each admission step is sent by four officers of the right post in four processes at
    once: one records it, the other three are told (exit 3, one line) that another officer
    just did, and nothing of theirs is written. Odd steps start the processes back to back;
    even steps also pass them through the gate so that all four certainly meet at the lock."""
    add_officers(world)
    start = world.ago(months=20)
    case_id = world.open_case(on=start)
    steps = plan_path(world, case_id, ADMISSION_PATH, start)
    expected_documents: list[tuple[int, str, str]] = []
    state = "candidate"

    for index, step in enumerate(steps):
        officer = ACTING[step.trigger]
        actors = [f"{officer}.{k}" for k in range(RACERS)]
        args = advance_args(case_id, step)
        world.store.close()  # the parent keeps no connection open while the children run
        if index % 2 == 0:
            procs = launch_all(db_url, actors, *args)
            assert all(p.poll() is None for p in procs), "a process ended before all had started"
        else:
            with move_in_progress(db_url, case_id) as tag:
                procs = launch_all(tagged(db_url, tag), actors, *args)
                wait_until_queued(db_url, tag, procs)
        results = finish(procs, actors)

        winners = [r for r in results if r.code == EXIT_OK]
        assert len(winners) == 1, [(r.actor, r.code, r.stderr) for r in results]
        winner = winners[0]
        seq = index + 2
        shown = json.loads(winner.stdout)
        assert {k: shown[k] for k in ("case", "seq", "trigger", "from", "to", "role", "business_date")} == {
            "case": case_id, "seq": seq, "trigger": step.trigger, "from": state, "to": step.to_state,
            "role": OFFICERS[officer][0], "business_date": format_date(step.on)}
        assert winner.stderr == ""
        lost = re.compile(
            rf"error: case {case_id} was just moved by another officer: {step.trigger} was "
            rf"recorded by {re.escape(winner.actor)} at \d\d/\d\d/\d{{4}} \d\d:\d\d \(event {seq}\); "
            r"nothing written — show the case again before retrying\n")
        for loser in results:
            if loser is winner:
                continue
            assert loser.code == EXIT_CONFLICT, (loser.actor, loser.code, loser.stderr)
            assert lost.fullmatch(loser.stderr), loser.stderr
            assert loser.stdout == ""

        history = world.store.cases.history(case_id)
        assert [e["seq"] for e in history] == list(range(1, seq + 1))
        assert [e["trigger"] for e in history] == ["open", *ADMISSION_PATH[:index + 1]]
        assert history[-1]["actor"] == winner.actor
        assert history[-1]["to_state"] == step.to_state
        for previous, event in zip(history, history[1:], strict=False):
            assert event["prev_hash"] == previous["hash"]
        expected_documents += [(seq, code, ref) for code, ref in step.documents.items()]
        stored = [(d["seq"], d["code"], d["reference"]) for d in world.store.cases.documents(case_id)]
        assert stored == expected_documents  # the losers attached nothing
        record = world.store.cases.load(case_id)
        assert (record.state, record.seq, record.version) == (step.to_state, seq, seq)
        assert record.head_hash == history[-1]["hash"]
        state = record.state

    assert world.store.cases.load(case_id).state == "probationary"
    verify_and_replay(db_url, [case_id])


# -- 2. different cases at once ---------------------------------------------------------
DRIVER = r"""
import json, sys, time
from datetime import date

from memberflow.storage.store import Store
from memberflow.app.service import Service

url, plan = sys.argv[1], json.loads(sys.argv[2])
store = Store(url)
service = Service(store)
service.definition(store.definitions.latest("membership")["id"])  # warm up before the start
print("ready", flush=True)
if sys.stdin.readline().strip() != "go":
    sys.exit(9)
results, started = [], time.time()
for case_id, trigger, actor, on, inputs, documents in plan:
    try:
        recorded = service.advance(actor, case_id, trigger, date.fromisoformat(on), inputs, documents)
        results.append([case_id, trigger, recorded.seq, None])
    except Exception as exc:
        results.append([case_id, trigger, None, f"{type(exc).__name__}: {exc}"])
ended = time.time()
store.close()
print(json.dumps({"started": started, "ended": ended, "results": results}), flush=True)
"""
WORKERS, CASES_EACH, STEPS = 4, 5, 3


def test_four_processes_advancing_their_own_cases_lose_nothing(world: World, db_url: str) -> None:
    """Four processes, five cases each, the first three admission steps on every case,
    released together: all 60 moves land (no conflict, no busy database, no deadlock), each
    case's chain is whole and verifies."""
    start = world.ago(months=20)
    cases = [[world.open_case(on=start) for _ in range(CASES_EACH)] for _ in range(WORKERS)]
    triggers = ADMISSION_PATH[:STEPS]
    plans = []
    for own in cases:
        steps = {case_id: plan_path(world, case_id, triggers, start) for case_id in own}
        plans.append([[case_id, step.trigger, ACTING[step.trigger], step.on.isoformat(),
                       step.inputs, step.documents]
                      for n in range(STEPS) for case_id in own for step in [steps[case_id][n]]])
    final_state = plan_path(world, cases[0][0], triggers, start)[-1].to_state
    world.store.close()

    procs = [subprocess.Popen([sys.executable, "-c", DRIVER, db_url, json.dumps(plan)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, encoding="utf-8", env=CHILD_ENV) for plan in plans]
    for proc in procs:
        read_line(proc, "ready")
    for proc in procs:  # the start signal, to all four within microseconds
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    finished = finish(procs, [f"worker {n}" for n in range(WORKERS)])

    reports = []
    for done in finished:
        assert done.code == 0 and done.stderr == "", (done.actor, done.code, done.stderr)
        reports.append(json.loads(done.stdout))
    failures = [r for report in reports for r in report["results"] if r[3] is not None]
    assert failures == []
    for report, own in zip(reports, cases, strict=True):
        expected = [[case_id, trigger, n + 2, None]
                    for n, trigger in enumerate(triggers) for case_id in own]
        assert report["results"] == expected
    # They really ran at the same time: every worker started before any had finished.
    assert max(r["started"] for r in reports) < min(r["ended"] for r in reports)

    for case_id in (c for own in cases for c in own):
        history = world.store.cases.history(case_id)
        assert [e["seq"] for e in history] == [1, 2, 3, 4]
        assert [e["trigger"] for e in history] == ["open", *triggers]
        record = world.store.cases.load(case_id)
        assert (record.state, record.seq, record.version) == (final_state, 4, 4)
        assert record.head_hash == history[-1]["hash"]
    # Our cases plus the two members conftest registers (2 events each).
    ours = WORKERS * CASES_EACH
    assert f"verified {ours * (STEPS + 1) + 2 * 2} events in {ours + 2} cases: all chains intact" \
        in verify(db_url)


def test_postgresql_move_on_another_case_does_not_wait_for_a_locked_case(world: World, db_url: str) -> None:
    """On PostgreSQL a move locks only its case's row: while one case is locked (a move on it
    queued behind the lock), a move on another case goes straight through."""
    if not is_postgresql(db_url):
        pytest.skip("SQLite has one write lock: moves on any case queue for it (see the lock tests)")
    on = world.ago(months=1)
    held, free = world.open_case(on=on), world.open_case(on=on)
    step = plan_path(world, held, ["record_training"], on)[0]
    world.store.close()
    with move_in_progress(db_url, held) as tag:
        queued = launch(tagged(db_url, tag), "secretary", *advance_args(held, step))
        wait_until_queued(db_url, tag, [queued])
        try:
            through = cli(db_url, *advance_args(free, step), actor="secretary", timeout=20)
        except subprocess.TimeoutExpired:
            pytest.fail("the move on another case waited behind the locked case")
        assert through.returncode == EXIT_OK, through.stderr
        assert queued.poll() is None, "the move on the locked case did not wait for its lock"
    result = finish([queued], ["secretary"])[0]
    assert result.code == EXIT_OK, result.stderr
    for case_id in (held, free):
        assert [e["trigger"] for e in world.store.cases.history(case_id)] == ["open", "record_training"]


# -- 3. SQLite: a writer holding the lock ------------------------------------------------
HOLDER = r"""
import sqlite3, sys

conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
sys.stdin.readline()  # hold the write lock until the parent says so (or goes away)
conn.execute("ROLLBACK")
conn.close()
"""


@contextmanager
def lock_held_by_another_process(db_path: Path) -> Iterator[subprocess.Popen[str]]:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(db_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              encoding="utf-8")
    try:
        read_line(holder, "locked")
        yield holder
    finally:
        if holder.poll() is None:
            assert holder.stdin is not None
            holder.stdin.write("release\n")
            holder.stdin.flush()
        _, err = holder.communicate(timeout=WAIT)
        assert holder.returncode == 0, err


def dump(db_path: Path) -> list[str]:
    with sqlite3.connect(db_path) as conn:
        return list(conn.iterdump())


def first_step(world: World) -> tuple[int, Step]:
    on = world.ago(months=1)
    case_id = world.open_case(on=on)
    step = plan_path(world, case_id, ["record_training"], on)[0]
    world.store.close()
    return case_id, step


def test_sqlite_lock_held_past_the_busy_timeout_is_exit_6_and_changes_nothing(
        world: World, db_path: Path) -> None:
    """Another process holds SQLite's write lock for longer than the 5 s busy timeout: the
    move waits the timeout out, then gives up with one line (exit 6); the file is unchanged."""
    case_id, step = first_step(world)
    before = dump(db_path)
    with lock_held_by_another_process(db_path):
        began = time.monotonic()
        result = cli(str(db_path), *advance_args(case_id, step), actor="secretary")
        waited = time.monotonic() - began
    assert result.returncode == EXIT_UNAVAILABLE, (result.returncode, result.stdout, result.stderr)
    assert result.stderr == (f"error: database is busy (another writer held it for over "
                             f"{BUSY_TIMEOUT_MS} ms); retry\n")
    assert result.stdout == ""
    assert waited >= BUSY_TIMEOUT_MS / 1000  # it waited out the timeout, it did not give up at once
    assert dump(db_path) == before
    verify(str(db_path))


def test_sqlite_lock_held_briefly_makes_the_move_wait_then_land(world: World, db_path: Path) -> None:
    """Another process holds the write lock for about a second: the move waits for it (it is
    still running when the lock goes) and then lands."""
    case_id, step = first_step(world)
    with lock_held_by_another_process(db_path):
        began = time.monotonic()
        proc = launch(str(db_path), "secretary", *advance_args(case_id, step))
        deadline = time.monotonic() + 20
        while not has_file_open(proc.pid, os.path.realpath(db_path)) and proc.poll() is None:
            assert time.monotonic() < deadline, "the CLI never opened the database"
            time.sleep(0.02)
        time.sleep(max(0.5, 1.0 - (time.monotonic() - began)))
        assert proc.poll() is None, "the move did not wait for the lock"  # still waiting on it
    result = finish([proc], ["secretary"])[0]
    assert result.code == EXIT_OK, result.stderr
    assert json.loads(result.stdout)["seq"] == 2
    history = world.store.cases.history(case_id)
    assert [e["trigger"] for e in history] == ["open", "record_training"]
    verify(str(db_path))


# -- 4. the same person's case opened twice at once --------------------------------------
def test_two_officers_opening_a_case_for_one_person_at_once_open_one(
        world: World, db_url: str) -> None:
    """Both requests are queued before either writes (the gate holds the person's row on
    PostgreSQL, the write lock on SQLite): exactly one case opens, the other officer is
    refused (exit 1) naming the case that was opened."""
    add_officers(world, 2)
    person = world.add_person("Lê Văn Tám")
    world.store.close()
    actors = ["secretary.0", "secretary.1"]
    args = ["case", "open", str(person), "--org", "VP", "--date", format_date(world.ago(months=1))]
    # What a case opening for the person waits for: the person's row (the new case's foreign
    # key needs a share lock on it) on PostgreSQL, the write lock on SQLite.
    with holding(db_url, "SELECT id FROM people WHERE id = :id FOR UPDATE", id=person) as tag:
        procs = launch_all(tagged(db_url, tag), actors, *args)
        wait_until_queued(db_url, tag, procs)
    results = finish(procs, actors)

    opened = world.store.cases.of_person(person)
    assert len(opened) == 1, [(r.actor, r.code, r.stdout, r.stderr) for r in results]
    case_id = opened[0].id
    winners = [r for r in results if r.code == EXIT_OK]
    assert len(winners) == 1
    assert winners[0].stdout == f"case {case_id} opened for person #{person} at VP\n"
    loser = next(r for r in results if r is not winners[0])
    assert loser.code == EXIT_REFUSED, (loser.code, loser.stderr)
    assert loser.stderr == f"refused: person {person} already has open case {case_id} (candidate)\n"
    verify(db_url)


# -- 5. one bulk file run twice at once --------------------------------------------------
@contextmanager
def holding(db: str, statement: str, **params: Any) -> Iterator[str]:
    """The gate for bulk work: on PostgreSQL ``statement`` (a lock) in an open transaction,
    on SQLite the write lock."""
    if is_postgresql(db):
        engine = create_engine(db)
        try:
            with engine.begin() as conn:
                conn.execute(text(statement), params)
                yield new_tag()
        finally:
            engine.dispose()
        return
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        yield new_tag()
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_one_advance_many_file_run_twice_at_once_applies_each_row_once(
        world: World, db_url: str, tmp_path: Path) -> None:
    """Two officers run the same file of failed votes (moves that leave the case where it
    is) at the same moment, meeting at the first case's lock: each row is applied once, by
    one of them; the other reports it already done."""
    cases = world.verified_cases(30)
    csv_file = tmp_path / "votes.csv"
    csv_file.write_text("case,votes_for,votes_eligible,doc:6-KNĐ\n" + "".join(
        f"{c},5,10,BB-{c}\n" for c in cases), encoding="utf-8")
    args = ["case", "advance-many", "record_failed_branch_vote", str(csv_file), "--date",
            format_date(world.ago(months=16)), "--format", "json"]
    world.store.close()
    actors = ["secretary", "secretary"]
    with holding(db_url, "SELECT id FROM cases WHERE id = :id FOR UPDATE", id=cases[0]) as tag:
        procs = launch_all(tagged(db_url, tag), actors, *args)
        wait_until_queued(db_url, tag, procs)
    results = finish(procs, actors)

    assert [r.code for r in results] == [EXIT_OK, EXIT_OK], [r.stderr for r in results]
    rows = [json.loads(r.stdout) for r in results]
    for first, second in zip(*rows, strict=True):
        assert first["case_id"] == second["case_id"]
        assert sorted([first["outcome"], second["outcome"]]) == ["already done", "moved"]
    votes = [sum(e["trigger"] == "record_failed_branch_vote" for e in world.store.cases.history(c))
             for c in cases]
    assert votes == [1] * len(cases)
    verify_and_replay(db_url, cases[:3])


def test_one_people_file_imported_twice_at_once_registers_everyone_once(
        world: World, db_url: str, tmp_path: Path) -> None:
    """Both imports have checked the file (no one registered yet) and wait to write: one
    registers everyone, the other, checking again inside its transaction, finds them
    registered and reports the file done; no one is registered twice."""
    people_csv = tmp_path / "people.csv"
    people_csv.write_text("full_name,birth_date,gender\n" + "".join(
        f"Nguyễn Văn Đồng {n},01/01/1990,nam\n" for n in range(20)), encoding="utf-8")
    before = len(world.store.directory.people(limit=100_000))
    world.store.close()
    actors = ["secretary", "secretary"]
    with holding(db_url, "LOCK TABLE people IN SHARE ROW EXCLUSIVE MODE") as tag:
        procs = [launch(tagged(db_url, tag), actor, "person", "import", str(people_csv))
                 for actor in actors]
        wait_until_queued(db_url, tag, procs)
    results = finish(procs, actors)

    assert [r.code for r in results] == [EXIT_OK, EXIT_OK], [r.stderr for r in results]
    assert sorted(r.stdout.split(":")[0].split()[0] for r in results) == ["already", "imported"]
    assert len(world.store.directory.people(limit=100_000)) == before + 20


def test_one_assessment_file_imported_twice_at_once_records_it_once(
        world: World, db_url: str, tmp_path: Path) -> None:
    """Both imports wait to write; the second, comparing inside its transaction, finds every
    row already recorded as given and adds nothing."""
    year = world.today.year
    members = world.members
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("person,year,score,absence_months\n" + "".join(
        f"{person},{year},75,1\n" for person in members), encoding="utf-8")
    world.store.close()
    actors = ["secretary", "secretary"]
    with holding(db_url, "SELECT id FROM people WHERE id = :id FOR UPDATE", id=members[0]) as tag:
        procs = [launch(tagged(db_url, tag), actor, "assess", "import", str(ratings))
                 for actor in actors]
        wait_until_queued(db_url, tag, procs)
    results = finish(procs, actors)

    assert [r.code for r in results] == [EXIT_OK, EXIT_OK], [r.stderr for r in results]
    assert sorted(r.stdout for r in results) == [
        f"0 assessment(s) recorded from {ratings}; {len(members)} already recorded as given "
        "(not added again)\n", f"{len(members)} assessment(s) recorded from {ratings}\n"]
    assert [len(world.store.assessments.history(p)) for p in members] == [1] * len(members)


# -- 6. bounded waits: a lock held too long, a move racing a migration ----------------------
@contextmanager
def case_row_locked(db: str, case_id: int) -> Iterator[None]:
    """Another session holding the case: on PostgreSQL a plain ``SELECT … FOR UPDATE`` of its
    row on a connection of its own; on SQLite the database's write lock."""
    if not is_postgresql(db):
        with lock_held_by_another_process(Path(db)):
            yield
        return
    engine = create_engine(db)
    try:
        with engine.begin() as conn:
            conn.execute(text("SELECT id FROM cases WHERE id = :id FOR UPDATE"), {"id": case_id})
            yield
    finally:
        engine.dispose()


def test_a_case_locked_by_another_session_is_exit_6_within_the_timeout(world: World, db_url: str) -> None:
    """A move on a case another session holds waits the lock timeout out (5 s, as SQLite's busy
    timeout) and gives up with one line, exit 6; nothing is written. It never waits for ever."""
    case_id, step = first_step(world)
    before = world.store.cases.history(case_id)
    with case_row_locked(db_url, case_id):
        began = time.monotonic()
        try:
            result = cli(db_url, *advance_args(case_id, step), actor="secretary", timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("the move waited for the locked case for over 30 s")
        waited = time.monotonic() - began
    assert result.returncode == EXIT_UNAVAILABLE, (result.returncode, result.stdout, result.stderr)
    expected = (f"error: case {case_id} is being changed by another session; try again\n"
                if is_postgresql(db_url) else
                f"error: database is busy (another writer held it for over {BUSY_TIMEOUT_MS} ms); retry\n")
    assert result.stderr == expected
    assert result.stdout == ""
    assert waited >= BUSY_TIMEOUT_MS / 1000
    assert world.store.cases.history(case_id) == before
    verify(db_url)


def test_a_batch_on_a_locked_case_is_exit_6_and_writes_nothing(world: World, db_url: str,
                                                               tmp_path: Path) -> None:
    """``advance-many --all-or-nothing`` (one transaction for all rows) on cases one of which
    another session holds: bounded, exit 6, no row written."""
    on = world.ago(months=1)
    cases = [world.open_case(on=on) for _ in range(3)]
    step = plan_path(world, cases[0], ["record_training"], on)[0]
    rows = "".join(f"{case_id},{format_date(on)},{step.inputs['certificate_date']},GCN\n"
                   for case_id in cases)
    path = tmp_path / "training.csv"
    path.write_text(f"case,date,certificate_date,doc:CN-NTVĐ\n{rows}", encoding="utf-8")
    world.store.close()
    with case_row_locked(db_url, cases[1]):
        try:
            result = cli(db_url, "case", "advance-many", "record_training", str(path),
                         "--all-or-nothing", actor="secretary", timeout=30)
        except subprocess.TimeoutExpired:
            pytest.fail("the batch waited for the locked case for over 30 s")
    assert result.returncode == EXIT_UNAVAILABLE, (result.returncode, result.stdout, result.stderr)
    expected = ("error: a case of the batch is being changed by another session; nothing written "
                "— try again\n" if is_postgresql(db_url) else
                f"error: database is busy (another writer held it for over {BUSY_TIMEOUT_MS} ms); retry\n")
    assert (result.stdout, result.stderr) == ("", expected)
    for case_id in cases:
        assert [e["trigger"] for e in world.store.cases.history(case_id)] == ["open"]


def test_postgresql_a_read_behind_a_table_lock_is_exit_6_within_the_timeout(world: World,
                                                                           db_url: str) -> None:
    """A read waits for a lock only while a schema change holds a table: bounded as well."""
    if not is_postgresql(db_url):
        pytest.skip("SQLite readers never wait (WAL)")
    case_id, _ = first_step(world)
    login_url(db_url, AUDITOR)  # the auditor's login role exists before the table is locked
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("LOCK TABLE cases IN ACCESS EXCLUSIVE MODE"))
            try:
                result = cli(db_url, "case", "show", str(case_id), actor=AUDITOR, timeout=30)
            except subprocess.TimeoutExpired:
                pytest.fail("the read waited for the table lock for over 30 s")
    finally:
        engine.dispose()
    assert result.returncode == EXIT_UNAVAILABLE, (result.returncode, result.stdout, result.stderr)
    assert result.stderr.startswith("error: ") and len(result.stderr.splitlines()) == 1
    assert "another session" in result.stderr


@pytest.mark.parametrize("batch", [False, True], ids=["case advance", "advance-many"])
def test_postgresql_a_move_racing_a_migration_waits_for_the_migrated_case(
        world: World, db_url: str, tmp_path: Path, batch: bool) -> None:
    """``definition migrate`` has re-pinned the case (not yet committed) when an officer's move
    on it arrives (alone, or in a batch): the move waits for the migration and is then decided
    on the migrated case, under the new version. It was told "case N not found": its locking
    read joined the case to its definition version and, re-checked after the wait, no longer
    matched."""
    if not is_postgresql(db_url):
        pytest.skip("SQLite runs the migration's transaction and the move one after the other")
    from test_publishing import revised

    world.store.directory.add_user("quantri", "Quản trị")
    world.store.directory.grant("quantri", "administrator", None)
    on = world.ago(months=1)
    case_id = world.open_case(on=on)
    step = plan_path(world, case_id, ["record_training"], on)[0]
    published = cli(db_url, "definition", "publish", str(revised(tmp_path, rename=False)),
                    "--comment", "Quy định 2026", actor="quantri")
    assert published.returncode == 0, published.stderr
    target = world.store.definitions.numbered("membership", 2)
    world.store.close()

    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:  # the migration will wait to write its audit row
            conn.execute(text("LOCK TABLE audit_events IN SHARE MODE"))
            migrate_tag, move_tag = new_tag(), new_tag()
            migrating = launch(tagged(db_url, migrate_tag),
                               "quantri", "definition", "migrate", "membership", "--to", "2")
            wait_until_queued(db_url, migrate_tag, [migrating])
            moving = launch(tagged(db_url, move_tag), "secretary", *(
                many_args(tmp_path, case_id, step) if batch else advance_args(case_id, step)))
            wait_until_queued(db_url, move_tag, [moving])
    finally:
        engine.dispose()
    migrated, moved = finish([migrating, moving], ["quantri", "secretary"])
    assert migrated.code == EXIT_OK, migrated.stderr
    assert moved.code == EXIT_OK, (moved.code, moved.stderr)
    history = world.store.cases.history(case_id)
    assert [(e["kind"], e["trigger"]) for e in history] == \
        [("open", "open"), ("migration", "migrate_definition"), ("move", "record_training")]
    assert history[-1]["definition_sha256"] == target["sha256"]
    verify_and_replay(db_url, [case_id])
