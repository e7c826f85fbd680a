"""CLI start-up: wall time of ``memberflow --help`` and ``memberflow case show ID``.

An officer runs one command at a time, so the time to import and answer is what they feel.
Each figure is the median of 10 runs of the venv's own ``memberflow`` script as a
subprocess; the floor is ``python -c pass`` (the interpreter alone) in the same run.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.scale import MEMBERFLOW, READER, generate

PYTHON = Path(sys.executable)
RUNS = 10


def median_wall(command: list[str], runs: int = RUNS) -> float:
    """Median seconds of ``runs`` runs, after one untimed run that warms the page cache."""
    subprocess.run(command, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def measure(db: Path | None = None, case_id: int | None = None) -> dict[str, float]:
    """Seconds for the interpreter alone, ``--help`` and ``case show``; without a database a
    small generated one (2,000 cases) is used."""
    if db is None:
        with tempfile.TemporaryDirectory() as folder:
            made = generate(Path(folder) / "startup.db", 2000, echo=lambda _: None)
            return measure(made.path, made.sample["case"])
    assert case_id is not None
    return {
        "python -c pass": median_wall([str(PYTHON), "-c", "pass"]),
        "memberflow --help": median_wall([str(MEMBERFLOW), "--help"]),
        "memberflow case show": median_wall([str(MEMBERFLOW), "--db", str(db), "--actor", READER,
                                             "case", "show", str(case_id)]),
    }


def heaviest_imports(db: Path, case_id: int, top: int = 12) -> list[tuple[str, float]]:
    """The modules whose import (with what they import) costs ``case show`` the most, in ms,
    from ``python -X importtime``: where a lazier import would pay off."""
    code = (f"import sys; sys.argv = ['memberflow', '--db', {str(db)!r}, '--actor', {READER!r}, "
            f"'case', 'show', '{case_id}']; from memberflow.cli import main; main()")
    done = subprocess.run([str(PYTHON), "-X", "importtime", "-c", code], capture_output=True,
                          text=True)
    found = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2].rstrip()
            depth = (len(name) - len(name.lstrip())) // 2
            if depth <= 1:
                found.append((name.strip(), int(parts[1]) / 1000))
    return sorted(found, key=lambda item: -item[1])[:top]


if __name__ == "__main__":
    for name, seconds in measure().items():
        print(f"{name:24} {seconds * 1000:6.0f} ms")
