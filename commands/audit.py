"""``memberflow audit``: auditors verify, checkpoint, replay and export the record."""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

import click
from memberflow.commands.context import Invocation, pass_invocation
from memberflow.commands.options import RECORD_ID, format_option, lang_option, output_file
from memberflow.commands.output import emit, progress_bar, render_table, spreadsheet_safe
from memberflow.errors import AuditFailed, BadInput
from memberflow.i18n import _


@click.group()
def audit() -> None:
    """Auditors: verify the hash chains, checkpoint them, replay cases, export the record."""


def _progress(invocation: Invocation, label: str) -> Any:
    """A progress bar over all audit events when stderr is a terminal; otherwise silent."""
    if not sys.stderr.isatty():
        return progress_bar(0, label)
    return progress_bar(invocation.application().audit.events(invocation.principal()), label)


@audit.command("verify")
@click.option("--case", "case_id", type=RECORD_ID, help="Only this case.")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also detect histories truncated or deleted since this checkpoint file.")
@format_option
@pass_invocation
def audit_verify(invocation: Invocation, case_id: int | None, checkpoint_file: Path | None,
                 fmt: str) -> None:
    """Recompute every chain; report the first bad row of each broken case (exit 8)."""
    auditing, principal = invocation.application().audit, invocation.principal()
    with _progress(invocation, _("verifying")) as bar:
        report = auditing.verify(principal, case_id, checkpoint_file, bar.update if bar else None)
    summary = {"cases": report.cases, "events": report.events, "broken_cases": len(report.breaks),
               "checked_against_checkpoint": report.checkpoint_cases}
    if fmt == "json":
        emit({**summary, "breaks": [vars(b) for b in report.breaks]}, fmt)
    else:
        for found in report.breaks:
            click.echo(str(found))
        outcome = _("all chains intact") if report.ok else \
            _("{count} broken").format(count=len(report.breaks))
        click.echo(_("verified {events} events in {cases} cases: {outcome}").format(
            events=report.events, cases=report.cases, outcome=outcome))
    if not report.ok:
        raise AuditFailed(_("{count} case(s) fail verification").format(count=len(report.breaks)))


@audit.command("checkpoint")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), callback=output_file,
              help="Also write the checkpoint (digest and every case head) to this file.")
@pass_invocation
def audit_checkpoint(invocation: Invocation, output: Path | None) -> None:
    """One digest over all case heads; keep the file outside the database."""
    taken = invocation.application().audit.checkpoint(invocation.principal(), output)
    written = _("; written to {path}").format(path=output) if output else ""
    click.echo(_("checkpoint {digest} over {cases} cases, {events} events at {time}{written}").format(
        digest=taken.digest, cases=taken.cases, events=taken.events, time=taken.created_at,
        written=written))


@audit.command("replay")
@click.argument("case_id", type=RECORD_ID, required=False)
@click.option("--all", "every", is_flag=True, help="Replay every case.")
@format_option
@pass_invocation
def audit_replay(invocation: Invocation, case_id: int | None, every: bool, fmt: str) -> None:
    """Rebuild cases from their events under the rules recorded on each event."""
    if every == (case_id is not None):
        raise BadInput(_("give a CASE or --all"))
    if every:
        _replay_all(invocation, fmt)
        return
    result = invocation.application().audit.replay(invocation.principal(), case_id)
    rows = [_step_row(step) for step in result.steps]
    if fmt == "json":
        emit({"case": case_id, "ok": result.ok, "divergence": result.divergence, "steps": rows}, fmt)
    else:
        click.echo(render_table(rows))
        click.echo(_("case {case}: replay matches the record").format(case=case_id) if result.ok
                   else _("case {case}: DIVERGES at {where}").format(case=case_id,
                                                                     where=result.divergence))
    if not result.ok:
        raise AuditFailed(_("case {case} diverges: {where}").format(case=case_id,
                                                                    where=result.divergence))


def _step_row(step: Any) -> dict[str, Any]:
    from memberflow.workflow.dates import format_date

    return {"seq": step.seq, "business_date": format_date(step.business_date),
            "trigger": step.trigger, "from": step.from_state or "-", "to": step.to_state,
            "actor": step.actor, "role": step.role}


def _replay_all(invocation: Invocation, fmt: str) -> None:
    auditing, principal = invocation.application().audit, invocation.principal()
    with _progress(invocation, _("replaying")) as bar:
        summary = auditing.replay_all(principal, bar.update if bar else None)
    divergent = [{"case": case_id, "divergence": why} for case_id, why in summary.divergent]
    if fmt == "json":
        emit({"cases": summary.cases, "events": summary.events, "divergent": divergent}, fmt)
    else:
        for row in divergent:
            click.echo(_("case {case}: DIVERGES at {where}").format(case=row["case"],
                                                                    where=row["divergence"]))
        outcome = _("all legal under their rules") if not divergent else \
            _("{count} diverge").format(count=len(divergent))
        click.echo(_("replayed {events} events in {cases} cases: {outcome}").format(
            events=summary.events, cases=summary.cases, outcome=outcome))
    if divergent:
        raise AuditFailed(_("{count} case(s) diverge from their rules").format(count=len(divergent)))


@audit.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv",
              show_default=True)
@click.option("--since", metavar="DATE", help="Only events on or after this business date.")
@click.option("--case", "case_id", type=RECORD_ID, help="Only this case.")
@click.option("--org", "org_code", metavar="CODE", help="Only this organization and below.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), callback=output_file,
              help="Write to this file instead of standard output.")
@lang_option
@pass_invocation
def audit_export(invocation: Invocation, fmt: str, since: str | None, case_id: int | None,
                 org_code: str | None, output: Path | None, lang: str) -> None:
    """Stream the audit record as CSV or JSON lines (UTF-8, labels kept)."""
    from memberflow.app.audit import EXPORT_COLUMNS
    from memberflow.workflow.dates import parse_date

    start = parse_date(since, "--since").isoformat() if since else None
    rows = invocation.application().audit.export(invocation.principal(), start, case_id, org_code,
                                                 lang)
    handle = output.open("w", encoding="utf-8", newline="") if output else None
    line = io.StringIO()
    writer = csv.DictWriter(line, EXPORT_COLUMNS)

    def put(text: str) -> None:
        if handle:
            handle.write(text)
        else:
            click.echo(text, nl=False)

    if fmt == "csv":
        writer.writeheader()
    for row in rows:
        if fmt == "csv":
            writer.writerow(spreadsheet_safe(row))
        else:
            line.write(json.dumps(row, ensure_ascii=False) + "\n")
        put(line.getvalue())
        line.seek(0)
        line.truncate()
    if handle:
        handle.close()
