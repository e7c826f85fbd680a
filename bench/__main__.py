"""``python -m bench``: prints each figure beside the floor it is compared to."""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import tempfile
from pathlib import Path

import sqlalchemy

from bench.moves import build, raw_floor, service_moves


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--moves", type=int, default=3000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        service, ids, on = build(Path(folder) / "bench.db", args.cases)
        ours = service_moves(service, ids, on, args.moves)
        floor = raw_floor(Path(folder) / "floor.db", args.cases, args.moves)
    rows = [{"metric": "single audited moves/s (service path, SQLite WAL NORMAL)",
             "value": round(ours), "floor": round(floor), "ratio": round(ours / floor, 3)}]
    print(f"{'metric':58} {'value':>8} {'floor':>8} {'ratio':>6}")
    for row in rows:
        print(f"{row['metric']:58} {row['value']:>8} {row['floor']:>8} {row['ratio']:>6}")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "latest.json").write_text(json.dumps({
        "machine": {"python": platform.python_version(), "sqlite": sqlite3.sqlite_version,
                    "sqlalchemy": sqlalchemy.__version__, "cases": args.cases,
                    "moves": args.moves},
        "results": rows}, indent=2))


if __name__ == "__main__":
    main()
