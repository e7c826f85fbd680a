"""The ``python -m bench`` sections for issue 7's items 5–7: memory, start-up and scale.

Each figure here is a cost (seconds, milliseconds, megabytes), so a row passes when the
value is at most its target, unlike the throughput rows of ``bench.__main__``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench import memory, scale, startup

Row = dict[str, object]
FULL_CASES = 1_000_000
FULL_SECONDS = 600  # the generator's target for the full 1M/1M/~10M set
LATENCY_MS = 1000
HELP_MS = 150
MEMORY_GROWTH_MB = 50


def cost_row(metric: str, value: float, floor: float | None, target: float | None) -> Row:
    """One table row for a cost; no target (None) means reported, not passed or failed."""
    return {"metric": metric, "value": round(value), "floor": round(floor) if floor else None,
            "ratio": round(value / floor, 3) if floor else None, "target": target,
            "ratio_target": None, "lower_is_better": True,
            "pass": value <= target if target is not None else None}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale-cases", type=int, default=100_000,
                        help="people and cases of the generated national-style set (full size: "
                             "1,000,000 with 'make bench-national')")
    parser.add_argument("--memory-cases", type=int, nargs=2, default=[10_000, 100_000],
                        metavar=("SMALL", "LARGE"),
                        help="cases moved by the two memory runs (full size: 10000 1000000)")
    parser.add_argument("--skip-national", action="store_true",
                        help="skip the start-up, memory and scale sections")


def measure(args: argparse.Namespace, notes: list[str]) -> list[Row]:
    """Start-up, then the scale set (generation time and CLI latencies), then memory."""
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as folder:
        rows += _scale(Path(folder) / "national.db", args.scale_cases, notes)
    rows += _memory(args.memory_cases, notes)
    return rows


def _scale(path: Path, cases: int, notes: list[str]) -> list[Row]:
    began = time.perf_counter()
    made = scale.generate(path, cases, echo=lambda _: None)
    seconds = time.perf_counter() - began
    # The 10-minute target is for the full size; a smaller set is reported only (the
    # templates and the organization tree cost the same at any size).
    target = FULL_SECONDS if cases >= FULL_CASES else None
    rows = [cost_row(f"scale: generate {made.cases:,} cases, {made.events:,} events (s)",
                     seconds, None, target)]
    notes.append(f"(scale: {made.people:,} people, {made.organizations:,} organizations, "
                 f"{path.stat().st_size / 1e9:.2f} GB; generation target {FULL_SECONDS} s at "
                 f"{FULL_CASES:,} cases ('make bench-national'); CLI latencies are medians of 5 "
                 f"runs after a warm-up, floor = python -c pass)")
    found = made.sample
    times = startup.measure(path, found["case"])
    floor_ms = times["python -c pass"] * 1000
    rows.append(cost_row("start-up: memberflow --help (ms, median of 10)",
                         times["memberflow --help"] * 1000, floor_ms, HELP_MS))
    rows.append(cost_row(f"start-up: memberflow case show, {made.cases:,} cases (ms)",
                         times["memberflow case show"] * 1000, floor_ms, None))
    for name, value in scale.latency(path, found=found).items():
        rows.append(cost_row(f"scale: {name}, {made.cases:,} cases (ms)", value * 1000,
                             floor_ms, LATENCY_MS))
    seconds, counted = scale.calendar_change(path)
    rows.append(cost_row(f"scale: calendar set-day, {counted:,} stored deadlines counted again (ms)",
                         seconds * 1000, floor_ms, None))
    heavy = startup.heaviest_imports(path, found["case"], top=5)
    notes.append("(case show's heaviest imports, ms: "
                 + ", ".join(f"{name} {ms:.0f}" for name, ms in heavy) + ")")
    return rows


def _memory(counts: list[int], notes: list[str]) -> list[Row]:
    small, large = (memory.measure(n) for n in sorted(counts))
    growth = large["peak_rss_mb"] - small["peak_rss_mb"]
    notes.append(f"(memory: peak RSS (VmHWM) of a child process making one move on each case "
                 f"through Service.advance_many, 1,000 per transaction: {small['moves']:,} moves "
                 f"in {small['seconds']:.0f} s, {large['moves']:,} in {large['seconds']:.0f} s)")
    return [
        cost_row(f"memory: peak RSS, one move on each of {small['moves']:,} cases (MB)",
                 small["peak_rss_mb"], None, None),
        cost_row(f"memory: peak RSS, one move on each of {large['moves']:,} cases (MB)",
                 large["peak_rss_mb"], None, None),
        cost_row("memory: growth from the small to the large run (MB)", growth, None,
                 MEMORY_GROWTH_MB),
    ]
