"""Proving the audit record was not altered: chain verification and checkpoints.

Verification streams every case's events in (case, seq) order next to the cases table and,
optionally, a checkpoint file, in constant memory. Per case it reports the *first* bad row
and what is wrong with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from memberflow.errors import Unavailable
from memberflow.i18n import N_, _
from memberflow.storage.chain import GENESIS, json_row_digest, row_digest, sealed, utc_now
from memberflow.storage.database import Database
from memberflow.storage.schema import audit_checkpoints
from sqlalchemy import Connection

T = TypeVar("T")
EVENT_COLUMNS = ("case_id, seq, kind, definition_sha256, trigger, from_state, to_state, actor, "
                 "role, recorded_at, business_date, payload, prev_hash, hash")
BATCH = 5000


@dataclass(frozen=True)
class ChainBreak:
    case_id: int
    seq: int | None
    kind: str  # payload changed | row missing | rows reordered | forged row | head mismatch | ...
    detail: str

    def __str__(self) -> str:
        where = _("seq {seq}").format(seq=self.seq) if self.seq is not None else _("case row")
        return _("case {case_id} {where}: {kind} — {detail}").format(
                   case_id=self.case_id, where=where, kind=_(self.kind), detail=self.detail)


@dataclass
class VerifyReport:
    cases: int = 0
    events: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)
    checkpoint_cases: int = 0

    @property
    def ok(self) -> bool:
        return not self.breaks


@dataclass(frozen=True)
class Head:
    case_id: int
    seq: int
    head_hash: str
    state: str | None = None


def _rows(conn: Connection, sql: str, params: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """Stream plain tuples through the driver's own cursor (a server-side one on PostgreSQL):
    constant memory, and no per-row objects on the verify hot path."""
    dbapi = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql":
        cursor = dbapi.cursor(name=f"memberflow_{uuid.uuid4().hex}")  # type: ignore[union-attr]
        sql = re.sub(r":(\w+)", r"%(\1)s", sql)
    else:
        cursor = dbapi.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(BATCH):
            yield from batch
    finally:
        cursor.close()


Span = tuple[int | None, int | None]  # case ids lo <= id < hi; None = unbounded
EVERY_CASE: Span = (None, None)


def _one(case_id: int | None) -> Span:
    return (case_id, case_id + 1) if case_id is not None else EVERY_CASE


def _span_sql(column: str, span: Span) -> tuple[str, dict[str, Any]]:
    clauses, params = [], {}
    if span[0] is not None:
        clauses.append(f"{column} >= :lo")
        params["lo"] = span[0]
    if span[1] is not None:
        clauses.append(f"{column} < :hi")
        params["hi"] = span[1]
    return (f"WHERE {' AND '.join(clauses)} " if clauses else ""), params


def _event_rows(conn: Connection, span: Span) -> Iterator[tuple[Any, ...]]:
    where, params = _span_sql("case_id", span)
    return _rows(conn, f"SELECT {EVENT_COLUMNS} FROM audit_events {where}ORDER BY case_id, seq",
                 params)


def _case_heads(conn: Connection, span: Span) -> Iterator[Head]:
    where, params = _span_sql("id", span)
    for cid, seq, head, state in _rows(
            conn, f"SELECT id, seq, head_hash, state FROM cases {where}ORDER BY id", params):
        yield Head(cid, seq, head, state)


def case_histories(db: Database, case_id: int | None = None,
                   recorded_until: str | None = None,
                   span: Span | None = None) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """Every case's events in order, one case at a time (constant memory across cases)."""
    with db.connect(unbounded=True) as conn:
        for cid, rows in _grouped(_event_rows(conn, span or _one(case_id))):
            events = [_as_event(row) for row in rows]
            if recorded_until is not None:
                events = [e for e in events if e["recorded_at"] <= recorded_until]
            yield cid, events


def export_rows(db: Database, since: str | None, case_id: int | None,
                organization_ids: list[int] | None) -> Iterator[dict[str, Any]]:
    """Audit events with their case's organization and person, streamed for export."""
    clauses, params = [], {}
    if since is not None:
        clauses.append("e.business_date >= :since")
        params["since"] = since
    if case_id is not None:
        clauses.append("e.case_id = :case_id")
        params["case_id"] = case_id
    if organization_ids is not None:
        clauses.append(f"c.organization_id IN ({', '.join(str(int(i)) for i in organization_ids)})")
    where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
    columns = ", ".join(f"e.{c.strip()}" for c in EVENT_COLUMNS.split(","))
    sql = (f"SELECT {columns}, o.code, c.person_id FROM audit_events e "
           "JOIN cases c ON c.id = e.case_id JOIN organizations o ON o.id = c.organization_id "
           f"{where}ORDER BY e.case_id, e.seq")
    with db.connect(unbounded=True) as conn:
        for row in _rows(conn, sql, params):
            event = _as_event(row[:-2])
            event.update(organization=row[-2], person_id=row[-1])
            yield event


def _as_event(row: tuple[Any, ...]) -> dict[str, Any]:
    keys = ("case_id", "seq", "kind", "definition_sha256", "trigger", "from_state", "to_state",
            "actor", "role", "recorded_at", "business_date", "payload", "prev_hash", "hash")
    return dict(zip(keys, row, strict=True))


def check_chain(case_id: int, events: Iterable[tuple[Any, ...]],
                head: Head | None, pinned: Head | None) -> tuple[int, ChainBreak | None]:
    """Walk one case's rows (``EVENT_COLUMNS`` tuples); returns (rows seen, first break).

    The loop body is the hot path of ``audit verify``: tuples, no per-row objects.
    """
    expected, prev, count = 1, GENESIS, 0
    last: tuple[Any, ...] | None = None
    pinned_hash: str | None = None
    json_allowed = True  # rows sealed the first way may only come before the chain's newer rows
    rows = iter(events)
    for row in rows:
        count += 1
        if row_digest(row) == row[13]:
            digest_ok, json_allowed = True, False
        else:
            digest_ok = json_allowed and json_row_digest(row) == row[13]
        if not digest_ok or row[1] != expected or row[12] != prev or \
                (head is not None and row[1] > head.seq):
            remaining = sum(1 for _ in rows)
            return count + remaining, _row_break(case_id, _as_event(row), expected, prev, head,
                                                 json_allowed)
        prev, expected, last = row[13], row[1] + 1, row
        if pinned is not None and row[1] == pinned.seq:
            pinned_hash = row[13]
    return count, _end_break(case_id, _as_event(last) if last else None, head, pinned, pinned_hash)


def _row_break(case_id: int, event: dict[str, Any], expected: int, prev: str,
               head: Head | None, json_allowed: bool) -> ChainBreak:
    seq = event["seq"]
    if head is not None and seq > head.seq and expected > head.seq:
        return ChainBreak(case_id, seq, N_("forged row"),
                          _("the row lies beyond the case's recorded head (seq {seq})").format(seq=head.seq))
    if seq != expected:
        return ChainBreak(case_id, expected, N_("row missing"),
                          _("seq {expected} is absent (the next row is seq {seq})").format(
                              expected=expected, seq=seq))
    if not sealed(event, json_allowed):
        written_as = _written_as(event, json_allowed)
        if written_as is not None:
            return ChainBreak(case_id, seq, N_("rows reordered"),
                              _("this row was written as seq {written_as}").format(written_as=written_as))
        return ChainBreak(case_id, seq, N_("payload changed"),
                          _("the stored hash does not match the row's content"))
    return ChainBreak(case_id, seq, N_("forged row"),
                      _("prev_hash does not match seq {previous}'s hash (row not written in turn)").format(
                          previous=seq - 1))


def _written_as(event: dict[str, Any], json_allowed: bool) -> int | None:
    """The sequence number under which this row's hash is valid, if another one."""
    for candidate in range(max(1, event["seq"] - 50), event["seq"] + 51):
        if candidate != event["seq"] and sealed({**event, "seq": candidate}, json_allowed):
            return candidate
    return None


def _end_break(case_id: int, last: dict[str, Any] | None, head: Head | None,
               pinned: Head | None, pinned_hash: str | None) -> ChainBreak | None:
    if head is None:
        return ChainBreak(case_id, None, N_("case row missing"),
                          _("audit events exist for a case that is not in the cases table"))
    if last is None:
        return ChainBreak(case_id, 1, N_("row missing"), _("the case has no audit events at all"))
    if (head.seq, head.head_hash, head.state) != (last["seq"], last["hash"], last["to_state"]):
        return ChainBreak(case_id, last["seq"], N_("head mismatch"),
                          _("case row says seq {seq}, state {state}, head {head_hash}; chain ends at seq "
                            "{seq2}, state {to_state}, hash {hash}").format(
                              seq=head.seq, state=head.state, head_hash=head.head_hash[:12],
                              seq2=last['seq'], to_state=last['to_state'], hash=last['hash'][:12]))
    if pinned is not None:
        if last["seq"] < pinned.seq:
            return ChainBreak(case_id, last["seq"], N_("truncated since checkpoint"),
                              _("checkpoint had seq {seq}; chain now ends at {seq2}").format(
                                  seq=pinned.seq, seq2=last['seq']))
        if pinned_hash != pinned.head_hash:
            return ChainBreak(case_id, pinned.seq, N_("rewritten since checkpoint"),
                              _("seq {seq} hash differs from the checkpoint's").format(seq=pinned.seq))
    return None


def verify(db: Database, case_id: int | None = None, checkpoint: Path | None = None,
           progress: Callable[[int], None] | None = None, workers: int | None = None) -> VerifyReport:
    """Verify every chain (or one case's) against the cases table and an optional checkpoint.

    Cases are independent, so the id range is split across worker processes (one per CPU);
    each streams its share in constant memory.
    """
    if checkpoint is not None:
        read_checkpoint(checkpoint, EVERY_CASE)  # the file must match its own digest first
    workers = workers or os.cpu_count() or 1
    if case_id is not None or workers == 1:
        return _verify_span(db, _one(case_id), checkpoint, progress)
    report = VerifyReport()
    for part in over_case_ranges(db, _verify_worker, (checkpoint,), workers):
        report.cases += part.cases
        report.events += part.events
        report.checkpoint_cases += part.checkpoint_cases
        report.breaks.extend(part.breaks)
        if progress:
            progress(part.events)
    return report


def over_case_ranges(db: Database, worker: Callable[[tuple[Any, ...]], T], extra: tuple[Any, ...],
                     workers: int) -> Iterator[T]:
    """Run ``worker((url, span, *extra))`` on ranges of case ids in ``workers`` processes.

    Cases are independent, so whole-record work (verify, replay) splits by case id; results
    come back in range order.
    """
    tasks = [(db.url, span, *extra) for span in spans(db, workers * 4)]
    with ProcessPoolExecutor(workers) as pool:
        yield from pool.map(worker, tasks)


def spans(db: Database, parts: int) -> list[Span]:
    """Split the case ids into ``parts`` ranges; the ends are open so nothing falls outside."""
    with db.connect(unbounded=True) as conn:
        low, high = next(_rows(conn, "SELECT min(id), max(id) FROM cases", {}))
    if low is None or high - low < parts:
        return [EVERY_CASE]
    step = (high - low) // parts + 1
    cuts = [low + step * n for n in range(1, parts)]
    return list(zip([None, *cuts], [*cuts, None], strict=True))


def _verify_worker(task: tuple[Any, ...]) -> VerifyReport:
    url, span, checkpoint = task
    db = Database(url)
    try:
        return _verify_span(db, span, checkpoint, None)
    finally:
        db.dispose()


def _verify_span(db: Database, span: Span, checkpoint: Path | None,
                 progress: Callable[[int], None] | None) -> VerifyReport:
    report = VerifyReport()
    pins = read_checkpoint(checkpoint, span)[1] if checkpoint else iter(())
    with db.connect(unbounded=True) as events_conn, db.connect(unbounded=True) as heads_conn:
        events = _grouped(_event_rows(events_conn, span))
        heads = _case_heads(heads_conn, span)
        for cid, rows, head, pinned in _merge(events, heads, pins):
            if pinned is not None:
                report.checkpoint_cases += 1
            if head is None and not rows and pinned is not None:
                report.breaks.append(ChainBreak(cid, None, N_("deleted since checkpoint"),
                                                _("the case had seq {seq} at the checkpoint").format(
                                                    seq=pinned.seq)))
                continue
            count, found = check_chain(cid, rows, head, pinned)
            report.cases += 1
            report.events += count
            if found:
                report.breaks.append(found)
            if progress:
                progress(count)
    return report


def _grouped(rows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[int, list[tuple[Any, ...]]]]:
    current: int | None = None
    bucket: list[tuple[Any, ...]] = []
    for row in rows:
        if row[0] != current:
            if current is not None:
                yield current, bucket
            current, bucket = row[0], []
        bucket.append(row)
    if current is not None:
        yield current, bucket


def _merge(events: Iterator[tuple[int, list[Any]]], heads: Iterator[Head],
           pins: Iterator[Head]) -> Iterator[tuple[int, list[Any], Head | None, Head | None]]:
    """Join three streams ordered by case id; a side with nothing for a case gives None/[]."""
    sentinel = (None, [])
    ev, hd, pn = next(events, sentinel), next(heads, None), next(pins, None)
    while ev[0] is not None or hd is not None or pn is not None:
        ids = [x for x in (ev[0], hd.case_id if hd else None, pn.case_id if pn else None)
               if x is not None]
        cid = min(ids)
        rows: list[Any] = []
        head = pin = None
        if ev[0] == cid:
            rows, ev = ev[1], next(events, sentinel)
        if hd is not None and hd.case_id == cid:
            head, hd = hd, next(heads, None)
        if pn is not None and pn.case_id == cid:
            pin, pn = pn, next(pins, None)
        yield cid, rows, head, pin


# -- checkpoints ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Checkpoint:
    digest: str
    cases: int
    events: int
    created_at: str


def _head_line(head: Head) -> str:
    return f"{head.case_id} {head.seq} {head.head_hash}\n"


def take_checkpoint(db: Database, file: Path | None = None) -> Checkpoint:
    """One digest over all case heads, stored in the database and optionally written to a file
    an auditor keeps elsewhere (the file lists every head, so truncation can be pinned)."""
    digest, cases, events = hashlib.sha256(), 0, 0
    created = utc_now()
    part = file.with_name(file.name + ".part") if file else None
    with (part.open("w", encoding="utf-8") if part else nullcontext()) as lines, \
            db.connect(unbounded=True) as conn:
        for head in _case_heads(conn, EVERY_CASE):
            line = _head_line(head)
            digest.update(line.encode())
            cases, events = cases + 1, events + head.seq
            if lines:
                lines.write(line)
    result = Checkpoint(digest.hexdigest(), cases, events, created)
    if file and part:
        _write_checkpoint_file(file, part, result)
    with db.connect() as conn:
        conn.execute(audit_checkpoints.insert().values(
            created_at=created, cases=cases, events=events, digest=result.digest))
    return result


def _write_checkpoint_file(file: Path, part: Path, checkpoint: Checkpoint) -> None:
    """A header line (digest, counts) followed by one ``case seq head`` line per case."""
    header = {"memberflow_checkpoint": 1, "digest": checkpoint.digest, "cases": checkpoint.cases,
              "events": checkpoint.events, "created_at": checkpoint.created_at}
    with file.open("w", encoding="utf-8") as out, part.open(encoding="utf-8") as lines:
        out.write(json.dumps(header) + "\n")
        shutil.copyfileobj(lines, out)
    part.unlink()


def read_checkpoint(file: Path, span: Span = EVERY_CASE) -> tuple[Checkpoint, Iterator[Head]]:
    """Open a checkpoint file; its heads within ``span``. Reading the whole file (the default
    span) also checks it against its own digest."""
    try:
        handle = file.open(encoding="utf-8")
        header = json.loads(handle.readline())
        meta = Checkpoint(header["digest"], header["cases"], header["events"], header["created_at"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise Unavailable(_("{file} is not a memberflow checkpoint file ({exc})").format(
                              file=file, exc=exc)) from None
    whole = span == EVERY_CASE

    def heads() -> Iterator[Head]:
        digest = hashlib.sha256()
        with handle:
            for number, line in enumerate(handle, start=2):
                parts = line.split()
                if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
                    raise Unavailable(_("{file}:{number}: not a checkpoint line").format(
                                          file=file, number=number))
                digest.update(line.encode())
                case_id = int(parts[0])
                if span[1] is not None and case_id >= span[1]:
                    return
                if span[0] is None or case_id >= span[0]:
                    yield Head(case_id, int(parts[1]), parts[2])
        if whole and digest.hexdigest() != meta.digest:
            raise Unavailable(_("{file} does not match its own digest: the checkpoint file was "
                                "altered").format(file=file))

    if whole:
        for _head in heads():
            pass
        return meta, _reopen(file)
    return meta, heads()


def _reopen(file: Path) -> Iterator[Head]:
    handle = file.open(encoding="utf-8")
    handle.readline()
    with handle:
        for line in handle:
            case_id, seq, head = line.split()
            yield Head(int(case_id), int(seq), head)
