"""Procedure definitions as administrators handle them: check, publish, approve, compare,
draw and migrate to; and as everyone reads them.

A definition file on disk needs no database (``check_files``, ``lint_files``, ``from_file``);
a stored version is read through ``Definitions`` by anyone with a grant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memberflow.app.publishing import Published, Publishing
from memberflow.errors import DefinitionInvalid, NotFound, Problem
from memberflow.i18n import _

if TYPE_CHECKING:
    from memberflow.app.application import Application
    from memberflow.app.principal import Principal
    from memberflow.app.repinning import Migrator
    from memberflow.workflow.definition import Definition
    from memberflow.workflow.diff import Change
    from memberflow.workflow.lint import Finding
    from memberflow.workflow.repinning import MigrationPlan


@dataclass(frozen=True)
class Checked:
    file: str
    definition: Definition


@dataclass(frozen=True)
class Linted:
    file: str
    findings: list[Finding]
    blocking: bool


def check_files(files: Sequence[str]) -> tuple[list[Checked], list[Problem]]:
    """Every file validated: those that are valid, and every problem of the others."""
    from memberflow.workflow.loader import load_definition

    checked, problems = [], []
    for file in files:
        try:
            checked.append(Checked(file, load_definition(file)))
        except DefinitionInvalid as error:
            problems.extend(error.problems)
    return checked, problems


def lint_files(files: Sequence[str], granted: set[str] | None, strict: bool) -> list[Linted]:
    """Findings per file; ``granted`` (the roles held in an installation) adds the warning of
    moves no one could make."""
    from memberflow.workflow.lint import has_errors, lint
    from memberflow.workflow.loader import load_definition

    results = []
    for file in files:
        findings = lint(load_definition(file), granted)
        results.append(Linted(file, findings, has_errors(findings, strict)))
    return results


def from_file(spec: str) -> Definition | None:
    """The definition in file ``spec`` (validated), or None when ``spec`` names no file."""
    from memberflow.workflow.loader import load_definition

    return load_definition(spec) if Path(spec).is_file() else None


def differences(old: Definition, new: Definition) -> list[Change]:
    from memberflow.workflow.diff import diff

    return diff(old, new)


def drawing(definition: Definition, fmt: str, lang: str) -> str:
    from memberflow.workflow.diagram import dot, mermaid

    return (mermaid if fmt == "mermaid" else dot)(definition, lang)


class Definitions:
    def __init__(self, app: Application) -> None:
        self.app = app
        self.access = app.access
        self.publishing = Publishing(app.store)

    # -- administrators -----------------------------------------------------------------------
    def granted_roles(self, principal: Principal) -> set[str]:
        self.access.require_any_grant(principal)
        return set(self.app.store.directory.granted_roles())

    def publish(self, principal: Principal, path: Path, comment: str, strict: bool) -> Published:
        return self.publishing.publish(principal.username, path, comment, strict)

    def approve(self, principal: Principal, spec: str) -> dict[str, Any]:
        return self.publishing.approve(principal.username, spec)

    def require_approval(self, principal: Principal, required: bool) -> None:
        self.publishing.set_approval(principal.username, required)

    def plan_migration(self, principal: Principal, name: str, version: int,
                       pairs: Iterable[str]) -> tuple[dict[str, Any], MigrationPlan]:
        return self._migrator.prepare(principal.username, name, version, pairs)

    def migrate(self, principal: Principal, row: dict[str, Any], plan: MigrationPlan, chunk: int,
                progress: Callable[[int], None] | None) -> int:
        return self._migrator.apply(principal.username, row, plan, chunk, progress)

    @cached_property
    def _migrator(self) -> Migrator:
        from memberflow.app.repinning import Migrator

        return Migrator(self.app.service)

    # -- everyone with a grant ----------------------------------------------------------------
    def versions(self, principal: Principal, name: str | None = None) -> list[dict[str, Any]]:
        self.access.require_any_grant(principal)
        rows = self.app.store.definitions.all(name)
        if name is not None and not rows:
            raise NotFound(_("no definition named {name} is stored").format(name=name))
        return rows

    def stored(self, principal: Principal, spec: str) -> tuple[dict[str, Any], Definition]:
        """``NAME`` (the newest published version) or ``NAME@VERSION``."""
        self.access.require_any_grant(principal)
        return self.publishing.stored(spec)
