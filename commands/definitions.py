"""``memberflow definition``: procedure definitions as YAML files and stored versions."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
from memberflow.commands.context import Invocation, pass_invocation
from memberflow.commands.options import format_option, lang_option, output_file
from memberflow.commands.output import emit, progress_bar, render_table
from memberflow.errors import BadInput, DefinitionInvalid
from memberflow.i18n import _, ngettext

VERSION_COLUMNS = ["name", "version", "status", "sha256", "author", "created_at"]


@click.group()
def definition() -> None:
    """Procedure definitions (YAML): validate, lint, publish, approve, diff, graph, migrate."""


@definition.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
def definition_validate(files: tuple[str, ...]) -> None:
    """Check definition files; every problem is reported with file and line."""
    from memberflow.app.definitions import check_files

    valid, problems = check_files(files)
    for checked in valid:
        loaded = checked.definition
        click.echo(_("{file}: ok ({name}: {states} states, {transitions} transitions, sha256 "
                     "{sha})").format(file=checked.file, name=loaded.name, states=len(loaded.states),
                                      transitions=len(loaded.transitions), sha=loaded.sha256[:12]))
    if problems:
        raise DefinitionInvalid(problems)


@definition.command("lint")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--strict", is_flag=True, help="Treat warnings as errors.")
@pass_invocation
def definition_lint(invocation: Invocation, files: tuple[str, ...], strict: bool) -> None:
    """Validate and lint files: every finding with file, line, and whether it blocks publishing.

    With a database (--db), also warns of moves no granted role can make."""
    from memberflow.app.definitions import lint_files

    granted = None
    if invocation.db or os.environ.get("MEMBERFLOW_DB"):
        granted = invocation.application().definitions.granted_roles(invocation.principal())
    blocking = []
    for linted in lint_files(files, granted, strict):
        for finding in linted.findings:
            click.echo(str(finding))
        click.echo(f"{linted.file}: {_count(linted.findings, 'error')}, "
                   f"{_count(linted.findings, 'warning')}")
        if linted.blocking:
            blocking.append(linted.file)
    if blocking:
        raise BadInput((_("lint found problems in {files}") if strict else
                        _("lint found errors in {files}")).format(files=", ".join(blocking)))


def _count(findings: Sequence[Any], severity: str) -> str:
    n = sum(1 for f in findings if f.severity == severity)
    if severity == "error":
        return ngettext("{count} error", "{count} errors", n).format(count=n)
    return ngettext("{count} warning", "{count} warnings", n).format(count=n)


@definition.command("publish")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--comment", required=True, help="Why this version (e.g. the regulation it implements).")
@click.option("--strict", is_flag=True, help="Refuse on lint warnings too.")
@pass_invocation
def definition_publish(invocation: Invocation, file: Path, comment: str, strict: bool) -> None:
    """Validate, lint and store FILE as a new immutable version (administrators)."""
    published = invocation.application().definitions.publish(invocation.principal(), file,
                                                             comment, strict)
    for finding in published.findings:
        click.echo(str(finding), err=True)
    row = published.version
    label = f"{row['name']}@{row['version']} (sha256 {row['sha256'][:12]})"
    if not published.is_new:
        click.echo(_("identical content is already stored as {label}, {status}; nothing changed")
                   .format(label=label, status=row["status"]))
    elif row["status"] == "pending":
        click.echo(_("stored {label}, pending: another administrator must run 'memberflow "
                     "definition approve {spec}'").format(label=label,
                                                          spec=f"{row['name']}@{row['version']}"))
    else:
        click.echo(_("published {label}: new cases start on it; running cases stay on their "
                     "version").format(label=label))


@definition.command("approve")
@click.argument("spec", metavar="NAME@VERSION")
@pass_invocation
def definition_approve(invocation: Invocation, spec: str) -> None:
    """Approve a pending version published by another administrator (maker–checker)."""
    row = invocation.application().definitions.approve(invocation.principal(), spec)
    click.echo(_("{spec} approved by {user}: published").format(
        spec=f"{row['name']}@{row['version']}", user=row["approved_by"]))


@definition.command("require-approval")
@click.argument("mode", type=click.Choice(["on", "off"]))
@pass_invocation
def definition_require_approval(invocation: Invocation, mode: str) -> None:
    """Maker–checker: when on, a published version waits for a second administrator."""
    invocation.application().definitions.require_approval(invocation.principal(), mode == "on")
    click.echo(_("approval of new definition versions by a second administrator: {mode}")
               .format(mode=mode))


@definition.command("list")
@format_option
@pass_invocation
def definition_list(invocation: Invocation, fmt: str) -> None:
    """Every stored version of every definition."""
    emit(invocation.application().definitions.versions(invocation.principal()), fmt, VERSION_COLUMNS)


@definition.command("history")
@click.argument("name")
@format_option
@pass_invocation
def definition_history(invocation: Invocation, name: str, fmt: str) -> None:
    """The versions of NAME, oldest first: who published and approved each, and why."""
    rows = invocation.application().definitions.versions(invocation.principal(), name)
    emit(rows, fmt, VERSION_COLUMNS + ["approved_by", "comment"])


@definition.command("show")
@click.argument("spec", metavar="NAME[@VERSION]")
@lang_option
@format_option
@pass_invocation
def definition_show(invocation: Invocation, spec: str, lang: str, fmt: str) -> None:
    """States and moves of a stored version (the newest published one by default)."""
    row, loaded = invocation.application().definitions.stored(invocation.principal(), spec)
    states = [{"state": s.name, "stage": s.stage, "terminal": s.terminal,
               "label": s.labels.get(lang)} for s in loaded.states.values()]
    moves = [{"move": t.trigger, "from": ", ".join(t.sources), "to": t.dest or _("(stays)"),
              "roles": ", ".join(t.roles), "guards": ", ".join(g.name for g in t.guards) or "-",
              "documents": ", ".join(t.documents) or "-",
              "deadline": _deadline_text(t.deadline)} for t in loaded.transitions]
    if fmt == "json":
        emit({"name": loaded.name, "version": row["version"], "status": row["status"],
              "sha256": loaded.sha256, "states": states, "transitions": moves}, fmt)
        return
    click.echo(f"{loaded.name} v{row['version']} ({row['status']}, {loaded.sha256[:12]}): "
               f"{loaded.title.get(lang)}")
    click.echo(render_table(states))
    click.echo()
    click.echo(render_table(moves))


def _deadline_text(deadline: Any) -> str:
    if deadline is None:
        return "-"
    unit = _("working days") if deadline.unit == "working_days" else _("months")
    extra = f" (+{deadline.extension_working_days})" if deadline.extension_working_days else ""
    return _("{amount} {unit}{extra} from {start}").format(amount=deadline.amount, unit=unit,
                                                           extra=extra, start=deadline.start)


def _definition_at(invocation: Invocation, spec: str) -> Any:
    """A YAML file (validated; no database needed) or a stored ``NAME[@VERSION]``."""
    from memberflow.app.definitions import from_file

    found = from_file(spec)
    if found is not None:
        return found
    if "/" in spec or spec.endswith((".yaml", ".yml")):
        raise BadInput(_("no such file: {path}").format(path=spec))
    return invocation.application().definitions.stored(invocation.principal(), spec)[1]


@definition.command("diff")
@click.argument("old", metavar="A")
@click.argument("new", metavar="B")
@pass_invocation
def definition_diff(invocation: Invocation, old: str, new: str) -> None:
    """What changed from A to B (each a YAML file or a stored NAME@VERSION), in plain words."""
    from memberflow.app.definitions import differences

    changes = differences(_definition_at(invocation, old), _definition_at(invocation, new))
    for change in changes:
        click.echo(str(change))
    click.echo(ngettext("{count} change", "{count} changes", len(changes)).format(count=len(changes)))


@definition.command("graph")
@click.argument("spec", metavar="NAME[@VERSION]|FILE")
@click.option("--format", "fmt", type=click.Choice(["mermaid", "dot"]), default="mermaid",
              show_default=True)
@lang_option
@click.option("-o", "output", type=click.Path(dir_okay=False, path_type=Path), callback=output_file,
              help="Write to this file instead of standard output.")
@pass_invocation
def definition_graph(invocation: Invocation, spec: str, fmt: str, lang: str,
                     output: Path | None) -> None:
    """The procedure as a diagram: states by stage, moves labeled with trigger and roles."""
    from memberflow.app.definitions import drawing

    text = drawing(_definition_at(invocation, spec), fmt, lang)
    if output is None:
        click.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        click.echo(_("wrote {path}").format(path=output))


@definition.command("migrate")
@click.argument("name")
@click.option("--to", "version", type=click.IntRange(min=1), required=True, help="Target version number.")
@click.option("--map", "pairs", multiple=True, metavar="OLD=NEW",
              help="Where cases in a state the target version lacks should land (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print the impact report and change nothing.")
@click.option("--chunk", type=click.IntRange(min=1, max=10_000), default=500, show_default=True,
              help="Cases per transaction.")
@pass_invocation
def definition_migrate(invocation: Invocation, name: str, version: int, pairs: tuple[str, ...],
                       dry_run: bool, chunk: int) -> None:
    """Move running cases of NAME to version --to (administrators); finished cases stay pinned."""
    definitions, principal = invocation.application().definitions, invocation.principal()
    row, report = definitions.plan_migration(principal, name, version, pairs)
    _echo_impact(report)
    if dry_run or not report.cases:
        return
    with progress_bar(report.cases, _("migrating")) as bar:
        moved = definitions.migrate(principal, row, report, chunk, bar.update if bar else None)
    click.echo(_("migrated {count} case(s) to {spec}; each has a migration event").format(
        count=moved, spec=f"{name}@{version}"))


def _echo_impact(report: Any) -> None:
    rows = [{"from": f"v{v}", "state": state, "cases": n, "lands in": to or "STRANDED"}
            for (v, state, to), n in sorted(report.landings.items(), key=lambda i: (i[0][0], i[0][1]))]
    click.echo(_("{count} running case(s) would move to {spec}:").format(
        count=report.cases, spec=f"{report.target.name}@{report.target_version}"))
    click.echo(render_table(rows))
    for change, n in sorted(report.deadline_changes.items()):
        click.echo(ngettext("open deadline change: {change} ({count} case)",
                            "open deadline change: {change} ({count} cases)", n)
                   .format(change=change, count=n))
    for fact, n in sorted(report.cleared.items()):
        click.echo(ngettext("fact cleared (a step the old version closed, which the new one "
                            "clears): {fact} ({count} case)",
                            "fact cleared (a step the old version closed, which the new one "
                            "clears): {fact} ({count} cases)", n).format(fact=fact, count=n))
    if report.stranded:
        click.echo(_("states that vanish without a --map: {states}").format(
            states=", ".join(report.vanishing)))
