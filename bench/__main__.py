"""``python -m bench``: each figure printed beside the floor it is compared to and its target."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import tempfile
from pathlib import Path

import sqlalchemy

from bench import audit, bulk, moves, national, postgresql


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--only", choices=["sqlite", "postgresql", "national"],
                        help="run one section only (quick runs); default: both")
    parser.add_argument("--cases", type=int, default=1000, help="cases for the moves benchmark")
    parser.add_argument("--moves", type=int, default=3000)
    parser.add_argument("--audit-cases", type=int, default=40_000,
                        help="cases of 12 events each for verify and replay")
    parser.add_argument("--pg-cases", type=int, default=1000,
                        help=f"cases for the PostgreSQL section (server: MEMBERFLOW_BENCH_PG_URL, "
                             f"default {postgresql.URL})")
    parser.add_argument("--pg-moves", type=int, default=1000,
                        help="single moves per PostgreSQL figure, shared among the writer processes")
    parser.add_argument("--pg-batched-moves", type=int, default=2000,
                        help=f"moves for the batched figures ({postgresql.BATCH:,} per transaction)")
    national.add_arguments(parser)
    args = parser.parse_args()
    rows: list[dict[str, object]] = []
    notes: list[str] = []
    machine: dict[str, object] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                                  "sqlite": sqlite3.sqlite_version,
                                  "sqlalchemy": sqlalchemy.__version__,
                                  # other work on the machine skews every figure: keep it on record
                                  "load_average_at_start": round(os.getloadavg()[0], 2)}
    if args.only in (None, "sqlite"):
        rows += _sqlite(args, notes)
    if args.only in (None, "postgresql"):
        skipped = postgresql.problem()
        if skipped:
            notes.append(f"PostgreSQL section skipped: no server at {postgresql.URL} ({skipped})")
            machine["postgresql"] = f"skipped: {skipped}"
        else:
            section = postgresql.measure(args.pg_cases, args.pg_moves, args.pg_batched_moves)
            rows += [_row(metric, value, floor, None) for metric, value, floor in section.rows]
            notes += section.notes
            machine.update(section.machine)
    if args.only in (None, "national") and not args.skip_national:
        rows += national.measure(args, notes)
    print(f"{'metric':52} {'value':>9} {'floor':>9} {'ratio':>6} {'target':>8}  result")
    for row in rows:
        floor_text = f"{row['floor']:>9}" if row["floor"] else f"{'-':>9}"
        ratio = f"{row['ratio']:>6}" if row["ratio"] else f"{'-':>6}"
        target = f"{row['target']:>8}" if row["target"] is not None else f"{'-':>8}"
        result = "-" if row["pass"] is None else "pass" if row["pass"] else "FAIL"
        print(f"{row['metric']:52} {row['value']:>9} {floor_text} {ratio} {target}  {result}")
    for note in notes:
        print(note)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "latest.json").write_text(json.dumps(
        {"machine": machine, "parameters": vars(args), "results": rows}, indent=2))


def _sqlite(args: argparse.Namespace, notes: list[str]) -> list[dict[str, object]]:
    """The SQLite figures: moves, audit verify and replay, each beside its raw sqlite3 floor."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        service, ids, on = moves.build(Path(folder) / "moves.db", args.cases)
        ours, floor = moves.measure(service, ids, on, Path(folder) / "floor.db", args.moves)
        rows.append(_row("single audited moves/s (service, SQLite WAL NORMAL)", ours, floor, 7000,
                         ratio_target=0.35))
        ours, floor = bulk.measure(service, ids, on, Path(folder) / "bulk_floor.db")
        rows.append(_row(f"bulk moves/s (advance_many, {bulk.BATCH:,} per transaction)", ours, floor,
                         25_000, ratio_target=0.5))

        path = Path(folder) / "audit.db"
        service, case = audit.template(path)
        events = audit.multiply(path, service, case, args.audit_cases)
        floor = audit.raw_floor(path)
        one, _ = audit.verify_rate(service, workers=1)
        rows.append(_row("audit verify events/s, 1 process", one, floor, 200_000))
        many, _ = audit.verify_rate(service)
        rows.append(_row(f"audit verify events/s, {os.cpu_count()} processes", many, floor, 200_000))
        rows.append(_row(f"audit replay --all events/s, {os.cpu_count()} processes",
                         audit.replay_rate(service), None, 50_000))
    notes.append(f"(audit record: {events + 13:,} events; floor = plain sqlite3 read + the same sha256, "
                 "one process)")
    notes.append("(moves pass only at both targets: the figure and its ratio to the floor, single "
                 ">= 0.35x, bulk >= 0.5x)")
    return rows


def _row(metric: str, value: float, floor: float | None, target: float | None,
         ratio_target: float | None = None) -> dict[str, object]:
    """One table row; a figure with no target (None) is reported, not passed or failed. A
    ratio target also asks value/floor to reach it: a machine that is fast (or idle) lifts
    the figure and its floor together, so the ratio is what says the code is efficient."""
    ratio = value / floor if floor else None
    passed = None if target is None else value >= target and (
        ratio_target is None or (ratio is not None and ratio >= ratio_target))
    return {"metric": metric, "value": round(value), "floor": round(floor) if floor else None,
            "ratio": round(ratio, 3) if ratio is not None else None, "target": target,
            "ratio_target": ratio_target, "pass": passed}


if __name__ == "__main__":
    main()
