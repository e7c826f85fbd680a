"""Peak memory of a process that advances one move on each of N cases.

The engine must hold no per-case state: a process that moves a million cases should need
about what one that moves ten thousand needs. Each measurement runs in its own child process
(so the peak RSS, ``ru_maxrss``, is the mover's alone): it opens the database, walks the
cases by id in chunks of 1,000 (never holding the list of ids) and makes one audited move on
each through ``Service.advance_many``, one transaction per 1,000 moves, as ``memberflow case
advance-many`` does. The database is made by ``bench.scale.generate`` with every case just
past ``record_training``; the move is ``renew_training`` (a stays-move any trained case may
make).

``python -m bench.memory --cases 10000 1000000`` measures the full-size pair (the 1M run
makes a million real moves: several minutes).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BATCH = 1000
MOVE = "renew_training"
STATE = "trained"


def _ids(store: Any, after: int) -> list[int]:
    """The next chunk of trained cases by id."""
    with store.db.connect() as conn:
        return list(conn.exec_driver_sql(
            "SELECT id FROM cases WHERE id > ? AND state = ? ORDER BY id LIMIT ?",
            (after, STATE, BATCH)).scalars())


def _memory_mb(field: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (now) of this process, in MB.

    Not ``ru_maxrss``: Linux carries it across ``exec``, so a child started by a big parent
    (the generator) would report the parent's peak. ``VmHWM`` belongs to the process's own
    address space. Elsewhere ``ru_maxrss`` is the fallback."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def advance_all(path: Path) -> dict[str, Any]:
    """In this process: one move on every trained case; returns moves, seconds and peak RSS
    before and after the moves (MB)."""
    from memberflow.app.service import AdvanceRequest, Service
    from memberflow.storage.store import Store
    from memberflow.workflow.dates import today

    store = Store(str(path))
    service = Service(store)
    on = today()
    inputs = {"certificate_date": (on - timedelta(days=1)).isoformat()}
    moved, after = 0, 0
    _ids(store, 0)
    before = _memory_mb("VmRSS")
    began = time.perf_counter()
    while chunk := _ids(store, after):
        service.advance_many("bithu", [AdvanceRequest(case, MOVE, on, inputs, {"CN-NTVĐ": "x"})
                                       for case in chunk])
        moved += len(chunk)
        after = chunk[-1]
    seconds = time.perf_counter() - began
    store.close()
    return {"moves": moved, "seconds": seconds, "rss_before_mb": before, "peak_rss_mb": _memory_mb("VmHWM"),
            "ancestor_cache_entries": len(store.directory._ancestors),
            "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def build(path: Path, cases: int) -> None:
    """A generated database with every case trained (see ``bench.scale``)."""
    from bench.scale import generate

    generate(path, cases, echo=lambda _: None, stop="record_training", copies=cases)


def measure(cases: int, folder: Path | None = None) -> dict[str, Any]:
    """Build a database of ``cases`` trained cases and move each once in a child process."""
    if folder is None:
        with tempfile.TemporaryDirectory() as scratch:
            return measure(cases, Path(scratch))
    path = folder / f"memory-{cases}.db"
    began = time.perf_counter()
    build(path, cases)
    built = time.perf_counter() - began
    done = subprocess.run([sys.executable, "-m", "bench.memory", "child", str(path)],
                          capture_output=True, text=True, check=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(done.stdout)
    result["build_seconds"] = built
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.memory")
    parser.add_argument("mode", nargs="?", default="measure", choices=["measure", "child"])
    parser.add_argument("path", nargs="?", type=Path, help="child: the database to move")
    parser.add_argument("--cases", type=int, nargs="+", default=[10_000, 1_000_000])
    args = parser.parse_args()
    if args.mode == "child":
        print(json.dumps(advance_all(args.path)))
        return
    results = {n: measure(n) for n in args.cases}
    for n, found in results.items():
        print(f"{n:>9,} cases: peak RSS {found['peak_rss_mb']:.1f} MB "
              f"(RSS before the moves {found['rss_before_mb']:.1f} MB), {found['moves']:,} moves "
              f"in {found['seconds']:.0f} s, database built in {found['build_seconds']:.0f} s, "
              f"ancestor cache {found['ancestor_cache_entries']:,} organizations, "
              f"ru_maxrss {found['ru_maxrss_mb']:.1f} MB")
    small, large = results[min(results)], results[max(results)]
    print(f"difference: {large['peak_rss_mb'] - small['peak_rss_mb']:.1f} MB (target <= 50 MB)")


if __name__ == "__main__":
    main()
