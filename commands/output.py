"""Rendering what operations return: tables, JSON, CSV, rows streamed as they commit."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click
from memberflow.i18n import NC_, _, pgettext

# Column headings of tables and streamed rows, translated where shown (JSON and CSV keep the keys).
HEADINGS = frozenset({
    NC_("column", "id"), NC_("column", "full_name"), NC_("column", "organization"),
    NC_("column", "state"), NC_("column", "label"), NC_("column", "opened_on"),
    NC_("column", "due_move"), NC_("column", "due_on"), NC_("column", "seq"),
    NC_("column", "business_date"), NC_("column", "trigger"), NC_("column", "from"),
    NC_("column", "to"), NC_("column", "to_label"), NC_("column", "actor"), NC_("column", "role"),
    NC_("column", "inputs"), NC_("column", "move"), NC_("column", "status"), NC_("column", "roles"),
    NC_("column", "needs_inputs"), NC_("column", "documents"), NC_("column", "name"),
    NC_("column", "version"), NC_("column", "sha256"), NC_("column", "author"),
    NC_("column", "created_at"), NC_("column", "approved_by"), NC_("column", "comment"),
    NC_("column", "code"), NC_("column", "kind"), NC_("column", "parent_code"),
    NC_("column", "username"), NC_("column", "birth_date"), NC_("column", "gender"),
    NC_("column", "ethnicity"), NC_("column", "education"), NC_("column", "year"),
    NC_("column", "score"), NC_("column", "rating"), NC_("column", "rating_label"),
    NC_("column", "absence_months"), NC_("column", "unpaid_dues_months"),
    NC_("column", "no_progress_months"), NC_("column", "recorded_by"), NC_("column", "recorded_at"),
    NC_("column", "case"), NC_("column", "person"), NC_("column", "criteria"),
    NC_("column", "reasons"), NC_("column", "pending_proposal"), NC_("column", "row"),
    NC_("column", "case_id"), NC_("column", "outcome"), NC_("column", "detail"),
    NC_("column", "stage"), NC_("column", "terminal"), NC_("column", "guards"),
    NC_("column", "deadline"), NC_("column", "cases"), NC_("column", "lands in"),
    NC_("column", "date"), NC_("column", "weekday"), NC_("column", "working"), NC_("column", "why"),
    NC_("column", "db_login"),
})


def heading(column: str) -> str:
    """A column's heading in the language in force (a key without one stays as it is)."""
    return pgettext("column", column) if column in HEADINGS else column


def _json_default(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def emit(rows: Sequence[Mapping[str, Any]] | Mapping[str, Any], fmt: str,
         columns: Sequence[str] | None = None) -> None:
    if fmt == "json":
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2, default=_json_default))
    elif isinstance(rows, Mapping):
        width = max((len(heading(k)) for k in rows), default=0)
        for key, value in rows.items():
            click.echo(f"{heading(key).ljust(width)}  {_cell(value)}")
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
        self.fmt, self.columns = fmt, list(columns)
        self.widths = [max(w, len(heading(c))) for c, w in zip(columns, widths, strict=True)]
        self.counts: dict[str, int] = {}

    def __enter__(self) -> RowStream:
        if self.fmt == "json":
            self._out("[")
        else:
            self._out(self._line([heading(c) for c in self.columns]))
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
        return _("(none)")
    columns = list(columns or rows[0].keys())
    headings = [heading(c) for c in columns]
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headings)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headings, widths, strict=True)).rstrip(),
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


