"""Publishing procedure definitions as immutable versions, with optional maker–checker.

Running cases stay pinned to the version they started on; new cases start on the newest
published version. A version is validated and linted before it is stored, so a mistake in
YAML is pointed at by file and line before anything is published.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memberflow.app.administration import Administration
from memberflow.errors import BadInput, DefinitionInvalid, MoveRefused, NotPermitted, Problem
from memberflow.i18n import _
from memberflow.workflow.definition import Definition
from memberflow.workflow.directory import ADMINISTRATOR
from memberflow.workflow.inputs import clean_text
from memberflow.workflow.lint import Finding, has_errors, lint
from memberflow.workflow.loader import load_definition, parse_definition

if TYPE_CHECKING:
    from memberflow.storage.store import Store

APPROVAL_SETTING = "definition_approval"
PUBLISHED, PENDING = "published", "pending"


@dataclass(frozen=True)
class Published:
    definition: Definition
    version: dict[str, Any]
    is_new: bool
    findings: list[Finding]


def split_spec(spec: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME@VERSION`` as typed by an administrator."""
    name, sep, number = spec.partition("@")
    if not sep:
        return name, None
    if not (number.isascii() and number.isdigit() and len(number) <= 9):
        raise BadInput(_("{spec!r}: the version after @ must be a number, e.g. {name}@2").format(
                           spec=spec, name=name))
    return name, int(number)


class Publishing:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.administration = Administration(store)

    def approval_required(self) -> bool:
        return self.store.setting(APPROVAL_SETTING) == "required"

    def set_approval(self, actor: str, required: bool) -> None:
        self.administration.require_admin(actor)
        self.store.set_setting(APPROVAL_SETTING, "required" if required else "off")

    def check(self, path: Path, strict: bool = False) -> tuple[Definition, list[Finding]]:
        """Validate and lint a file; refuse (every problem with file:line) on an error."""
        definition = load_definition(path)
        findings = lint(definition, set(self.store.directory.granted_roles()))
        if has_errors(findings, strict):
            blocking = [f for f in findings if strict or f.severity == "error"]
            raise DefinitionInvalid([Problem(f.file, f.line, f"{f.severity}: {f.message}")
                                     for f in blocking])
        return definition, findings

    def publish(self, actor: str, path: Path, comment: str, strict: bool = False) -> Published:
        self.administration.require_admin(actor)
        definition, findings = self.check(path, strict)
        status = PENDING if self.approval_required() else PUBLISHED
        version_id, is_new = self.store.definitions.store(
            definition.name, definition.sha256, definition.source, str(path), status, actor,
            clean_text(comment, "comment", 2000))
        return Published(definition, self.store.definitions.by_id(version_id), is_new, findings)

    def install(self, actor: str | None, folder: Path) -> list[Published]:
        """The definitions bundled with memberflow (``init``): content a stored version already
        has is left as it is; anything new is published by ``actor`` through ``publish``, so an
        administrator is its author and maker–checker holds. Nothing is published unless every
        new file can be."""
        found = [(path, load_definition(path)) for path in sorted(folder.glob("*.yaml"))]
        new = [(path, d) for path, d in found if self.store.definitions.find(d.sha256) is None]
        if new and actor is None:
            path, definition = new[0]
            raise BadInput(_("{name} differs from every stored version of {name2}; init publishes it as an "
                             "administrator: name one with --actor or MEMBERFLOW_ACTOR").format(
                               name=path.name, name2=definition.name))
        if new:
            self.administration.require_admin(str(actor))
        published = []
        for path, definition in found:
            stored = self.store.definitions.find(definition.sha256)
            if stored is None:
                published.append(self.publish(str(actor), path,
                                              f"bundled {path.name}, published by memberflow init"))
            else:
                published.append(Published(definition, stored, False, []))
        return published

    def approve(self, actor: str, spec: str) -> dict[str, Any]:
        """The checker: a different administrator puts a pending version in force."""
        self.administration.require_admin(actor)
        row, _definition = self.stored(spec)
        if row["status"] != PENDING:
            raise MoveRefused(_("{name}@{version} is {status}, not pending approval").format(
                                  name=row['name'], version=row['version'], status=row['status']))
        if row["author"] == actor:
            raise NotPermitted(_("{actor} published {name}@{version}; a different {administrator} must "
                                 "approve it").format(
                                   actor=actor, name=row['name'], version=row['version'],
                                   administrator=ADMINISTRATOR))
        self.store.definitions.approve(row["id"], actor)
        return self.store.definitions.by_id(row["id"])

    def stored(self, spec: str) -> tuple[dict[str, Any], Definition]:
        """``NAME`` (newest published) or ``NAME@VERSION`` from the database."""
        name, number = split_spec(spec)
        row = (self.store.definitions.latest(name) if number is None
               else self.store.definitions.numbered(name, number))
        return row, parse_definition(row["source"], f"{row['name']}@{row['version']}")
