"""Moves per second on PostgreSQL: memberflow beside raw psycopg doing the same writes.

Everything runs in a fresh schema ``bench_<random>`` on the server at
``MEMBERFLOW_BENCH_PG_URL`` (dropped afterwards), on cases built by ``bench.moves.build``
and analyzed before anything is timed: psycopg prepares a statement after five uses, and a
plan prepared against empty tables goes stale as they grow. Each figure is measured with
the raw floor in the same run, single moves with 1, 2 and 4 writer processes on distinct
cases, batched moves with 1,000 moves per transaction. The floor writes real, correctly
chained rows, so the record is verified at the end.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from multiprocessing.synchronize import Barrier
from typing import Any

from memberflow.app.service import AdvanceRequest, Service
from memberflow.storage.chain import canonical_json, chain_digest, utc_now
from memberflow.storage.store import Store
from memberflow.storage.verification import verify
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from bench import moves

URL = os.environ.get("MEMBERFLOW_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BATCH = 1000
WRITERS = (1, 2, 4)
# What bench.moves fires: a move that stays in its state, so it can be repeated at will.
TRIGGER, ACTOR, ROLE, DOCUMENT = "renew_training", "bithu", "branch_secretary", "CN-NTVĐ"


@dataclass
class Section:
    """The PostgreSQL figures: (metric, value, floor) rows, notes to print, server facts."""

    rows: list[tuple[str, float, float | None]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    machine: dict[str, str] = field(default_factory=dict)


def problem(url: str = URL) -> str | None:
    """Why no PostgreSQL answers at ``url`` (None when one does)."""
    engine = create_engine(url)
    try:
        with engine.connect():
            return None
    except OperationalError as exc:
        return str(exc.orig).strip().splitlines()[0]
    except ImportError as exc:
        return f"driver missing ({exc})"
    finally:
        engine.dispose()


@contextmanager
def fresh_schema(url: str = URL) -> Iterator[str]:
    """A new empty schema; yields a URL whose search_path is it; drops it afterwards."""
    schema = f"bench_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    admin.dispose()  # no connection of ours stays open while the writer processes run
    try:
        yield f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def measure(cases: int, single_moves: int, batched_moves: int, url: str = URL) -> Section:
    """Every PostgreSQL figure, memberflow and floor side by side, in one fresh schema."""
    import psycopg

    section = Section()
    with fresh_schema(url) as bench_url:
        # build() only ever calls str() on its path, so a URL serves as well as a file.
        service, ids, on = moves.build(bench_url, cases)  # type: ignore[arg-type]
        with service.store.db.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            section.machine = {
                "postgresql": conn.exec_driver_sql("SHOW server_version").scalar_one(),
                "synchronous_commit": conn.exec_driver_sql("SHOW synchronous_commit").scalar_one(),
                "psycopg": psycopg.__version__}
        service.store.close()
        # Each figure is timed right beside its floor: load on the machine drifts.
        ours: dict[int, float] = {}
        floor: dict[int, float] = {}
        template: dict[str, Any] = {}
        for k in WRITERS:
            ours[k] = _writers("memberflow", bench_url, ids, on, {}, single_moves, k)
            template = template or _payload_template(bench_url, ids[0])
            floor[k] = _writers("raw", bench_url, ids, on, template, single_moves, k)
        batched = _batched(bench_url, ids, on, batched_moves)
        raw_batched = _raw_batched(bench_url, ids, on, template, batched_moves)
        events = _verified(bench_url)
    for k in WRITERS:
        section.rows.append((f"PG audited moves/s, {k} writer process{'es' if k > 1 else ''}",
                             ours[k], floor[k]))
    section.rows.append((f"PG batched moves/s, advance_many {BATCH:,}/transaction", batched,
                         raw_batched))
    section.notes.append(
        f"(PostgreSQL {section.machine['postgresql']}, synchronous_commit="
        f"{section.machine['synchronous_commit']}, {cases:,} cases, {single_moves:,} single and "
        f"{batched_moves:,} batched moves per figure; floor = raw psycopg per move: SELECT ... FOR "
        "UPDATE, version-checked UPDATE, INSERT of the sha256-chained event and of the document; "
        f"batched floor = the same with executemany; afterwards audit verify: {events:,} events, "
        "every chain intact)")
    return section


# -- memberflow --------------------------------------------------------------------------------
def _batched(url: str, ids: list[int], on: date, count: int) -> float:
    """``advance_many`` moves per second, ``BATCH`` moves per transaction, after a warm-up."""
    service = Service(Store(url))
    try:
        _advance_batches(service, ids, on, min(10, len(ids)), 0)
        began = time.perf_counter()
        _advance_batches(service, ids, on, count, len(ids))
        return count / (time.perf_counter() - began)
    finally:
        service.store.close()


def _advance_batches(service: Service, ids: list[int], on: date, count: int, first: int) -> None:
    """``count`` moves from the ``first``-th on, cycling over the cases, in batches of ``BATCH``."""
    for start in range(first, first + count, BATCH):
        service.advance_many(ACTOR, [
            AdvanceRequest(ids[n % len(ids)], TRIGGER, on, {"certificate_date": on.isoformat()},
                           {DOCUMENT: f"b{n}"})
            for n in range(start, min(first + count, start + BATCH))])


# -- the raw psycopg floor ---------------------------------------------------------------------
# The same statements a move issues (one prepared text each, whatever the number of cases).
_LOCK = ("SELECT c.id, c.state, c.version, c.seq, c.head_hash, c.facts, c.due_on, c.due_move, "
         "d.sha256 FROM cases c JOIN definition_versions d ON d.id = c.definition_id "
         "WHERE c.id = ANY(%s) ORDER BY c.id FOR UPDATE OF c")
_UPDATE = ("UPDATE cases SET state = %s, version = %s, seq = %s, head_hash = %s, facts = %s, "
           "due_on = %s, due_move = %s, updated_at = %s WHERE id = %s AND version = %s")
_EVENT = ("INSERT INTO audit_events (case_id, seq, kind, definition_sha256, trigger, from_state, "
          "to_state, actor, role, recorded_at, business_date, payload, prev_hash, hash) "
          "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)")
_DOCUMENT = "INSERT INTO documents (case_id, seq, code, reference, recorded_at) VALUES (%s, %s, %s, %s, %s)"


@dataclass(slots=True)
class _Head:
    """A case row as the floor reads it; advanced in memory as the floor writes."""

    id: int
    state: str
    version: int
    seq: int
    head_hash: str
    facts: str
    due_on: date | None
    due_move: str | None
    sha256: str


def _conninfo(url: str) -> str:
    """The libpq form of a SQLAlchemy URL (same server, same search_path)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _payload_template(url: str, case_id: int) -> dict[str, Any]:
    """The payload of a real renew_training event, so the floor writes rows of the same size."""
    store = Store(url)
    try:
        return json.loads(store.cases.history(case_id)[-1]["payload"])
    finally:
        store.close()


def _raw_moves(conn: Any, ids: list[int], on: date, template: dict[str, Any], count: int,
               per_transaction: int, first: int = 0) -> None:
    """``count`` moves through plain psycopg, ``per_transaction`` per transaction: lock and
    read the cases, chain each event exactly as storage does, write case, event, document."""
    for start in range(first, first + count, per_transaction):
        numbers = range(start, min(first + count, start + per_transaction))
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(_LOCK, (sorted({ids[n % len(ids)] for n in numbers}),))
            heads = {row[0]: _Head(*row) for row in cur.fetchall()}
            updates, events, documents = zip(*(_raw_step(heads[ids[n % len(ids)]], n, on, template)
                                               for n in numbers), strict=True)
            if per_transaction == 1:
                cur.execute(_UPDATE, updates[0])
                changed = cur.rowcount
                cur.execute(_EVENT, events[0])
                cur.execute(_DOCUMENT, documents[0])
            else:
                cur.executemany(_UPDATE, updates)
                changed = cur.rowcount
                cur.executemany(_EVENT, events)
                cur.executemany(_DOCUMENT, documents)
            if changed != len(updates):
                raise AssertionError("the floor lost a version check")


def _raw_step(head: _Head, n: int, on: date,
              template: dict[str, Any]) -> tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]:
    """One move's three rows (UPDATE, event, document parameters); advances ``head``."""
    now, seq = utc_now(), head.seq + 1
    payload = canonical_json({**template, "documents": {DOCUMENT: f"f{n}"}})
    digest = chain_digest(head.id, seq, "move", head.sha256, TRIGGER, head.state, head.state, ACTOR,
                          ROLE, now, on, payload, head.head_hash)
    update = (head.state, head.version + 1, seq, digest, head.facts, head.due_on, head.due_move,
              now, head.id, head.version)
    event = (head.id, seq, "move", head.sha256, TRIGGER, head.state, head.state, ACTOR, ROLE, now,
             on, payload, head.head_hash, digest)
    head.version, head.seq, head.head_hash = head.version + 1, seq, digest
    return update, event, (head.id, seq, DOCUMENT, f"f{n}", now)


def _raw_batched(url: str, ids: list[int], on: date, template: dict[str, Any], count: int) -> float:
    import psycopg

    with psycopg.connect(_conninfo(url)) as conn:
        _raw_moves(conn, ids, on, template, min(10, len(ids)), BATCH)
        began = time.perf_counter()
        _raw_moves(conn, ids, on, template, count, BATCH, len(ids))
        return count / (time.perf_counter() - began)


# -- concurrent writer processes ---------------------------------------------------------------
_start_line: Barrier | None = None


def _share_start_line(barrier: Barrier) -> None:
    global _start_line
    _start_line = barrier


@dataclass(frozen=True)
class _Task:
    kind: str  # "memberflow" (Service.advance) or "raw" (the floor)
    url: str
    ids: list[int]
    on: date
    template: dict[str, Any]
    count: int


def _writer(task: _Task) -> tuple[float, float]:
    """One writer process: connect and warm up, wait for the others, then time its moves.

    Returns (start, end) on the machine-wide monotonic clock, so the parent can take the
    wall time of all writers together.
    """
    import psycopg

    assert _start_line is not None
    run: Callable[[], object]
    close: Callable[[], None]
    try:
        if task.kind == "memberflow":
            service = Service(Store(task.url))
            moves.service_moves(service, task.ids[:1], task.on, 1)
            run = partial(moves.service_moves, service, task.ids, task.on, task.count)
            close = service.store.close
        else:
            conn = psycopg.connect(_conninfo(task.url))
            _raw_moves(conn, task.ids[:1], task.on, task.template, 1, 1)
            run = partial(_raw_moves, conn, task.ids, task.on, task.template, task.count, 1)
            close = conn.close
    except BaseException:
        _start_line.abort()  # the others must not wait for a writer that will never come
        raise
    try:
        _start_line.wait(timeout=120)
        start = time.monotonic()
        run()
        return start, time.monotonic()
    finally:
        close()


def _writers(kind: str, url: str, ids: list[int], on: date, template: dict[str, Any],
             count: int, processes: int) -> float:
    """Moves per second of ``processes`` writers together, each on its own share of the cases."""
    context = multiprocessing.get_context("spawn")  # fresh processes: no inherited connections
    start_line = context.Barrier(processes)
    each = count // processes
    tasks = [_Task(kind, url, ids[n::processes], on, template, each) for n in range(processes)]
    with ProcessPoolExecutor(processes, mp_context=context, initializer=_share_start_line,
                             initargs=(start_line,)) as pool:
        spans = list(pool.map(_writer, tasks))
    return each * processes / (max(end for _, end in spans) - min(start for start, _ in spans))


def _verified(url: str) -> int:
    """Verify every chain the run wrote (memberflow's and the floor's); returns the events."""
    store = Store(url)
    try:
        report = verify(store.db, workers=1)
    finally:
        store.close()
    assert report.ok, report.breaks[:3]
    return report.events
