"""Rendering what operations return: tables, JSON, CSV, rows streamed as they commit."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click


def _json_default(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def emit(rows: Sequence[Mapping[str, Any]] | Mapping[str, Any], fmt: str,
         columns: Sequence[str] | None = None) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=_json_default))
    elif isinstance(rows, Mapping):
        width = max((len(k) for k in rows), default=0)
        for key, value in rows.items():
            click.echo(f"{key.ljust(width)}  {_cell(value)}")
    else:
        click.echo(render_table(rows, columns))


class RowStream:
    """Bulk results printed and flushed one by one, each as soon as its transaction has
    committed, so a run that stops (or is killed) has already shown every row it committed.

    A table is a header, then one line per row in fixed-width columns (the last runs on).
    JSON is still one array, closed also when the run stops, with one object per line (the
    comma leads the line), so every line written is complete even if the process is killed.
    """

    def __init__(self, fmt: str, columns: Sequence[str], widths: Sequence[int]) -> None:
        self.fmt, self.columns, self.widths = fmt, list(columns), list(widths)
        self.counts: dict[str, int] = {}

    def __enter__(self) -> RowStream:
        if self.fmt == "json":
            self._out("[")
        else:
            self._out(self._line(self.columns))
            self._out(self._line(["-" * w for w in self.widths]))
        return self

    def write(self, row: Mapping[str, Any], outcome: str) -> None:
        if self.fmt == "json":
            lead = ", " if self.counts else "  "
            self._out(lead + json.dumps(row, ensure_ascii=False, default=_json_default))
        else:
            self._out(self._line([_cell(row.get(c)) for c in self.columns]))
        self.counts[outcome] = self.counts.get(outcome, 0) + 1

    def __exit__(self, *_: object) -> None:
        if self.fmt == "json":
            self._out("]")

    def _line(self, cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, self.widths, strict=True)).rstrip()

    @staticmethod
    def _out(text: str) -> None:
        click.echo(text)
        sys.stdout.flush()


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=_json_default)
    return str(value)


def render_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> str:
    if not rows:
        return "(none)"
    columns = list(columns or rows[0].keys())
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)




def write_csv(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> None:
    import csv
    import io

    text = io.StringIO()
    writer = csv.DictWriter(text, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows([spreadsheet_safe(dict(row)) for row in rows])
    click.echo(text.getvalue(), nl=False)


def spreadsheet_safe(row: dict[str, Any]) -> dict[str, Any]:
    """Text that a spreadsheet would run as a formula (= + - @ tab CR first) is prefixed with a
    quote in CSV, so opening an export can never execute what someone typed as a name."""
    return {key: f"'{value}" if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r")
            else value for key, value in row.items()}



def progress_bar(total: int, label: str, streamed: bool = False) -> Any:
    """A progress bar on a terminal; silent otherwise, and when results streamed to the
    same terminal are the progress."""
    from contextlib import nullcontext

    if not sys.stderr.isatty() or (streamed and sys.stdout.isatty()):
        return nullcontext(None)
    return click.progressbar(length=total, label=label, file=sys.stderr)


