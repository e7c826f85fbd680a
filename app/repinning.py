"""Applying a re-pinning of running cases (``definition migrate``) chunk by chunk."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from memberflow.app.administration import Administration
from memberflow.errors import MoveRefused, StoppedPartWay
from memberflow.i18n import _
from memberflow.workflow.dates import today
from memberflow.workflow.deadlines import open_deadlines
from memberflow.workflow.directory import ADMINISTRATOR
from memberflow.workflow.repinning import (
    MIGRATION_KIND,
    MIGRATION_TRIGGER,
    MigrationPlan,
    RunningCase,
    carried_facts,
    landing,
    migration_payload,
    parse_state_map,
    plan,
    stranded_text,
)

if TYPE_CHECKING:
    from memberflow.app.service import Service
    from memberflow.storage.cases import CaseRecord
    from memberflow.storage.store import MoveSnapshot, MoveWrite


class Migrator:
    """Applies a migration chunk by chunk; each case's re-pinning is one audit event written
    in the same transaction as the change, so a killed run resumes where it stopped."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.store = service.store
        self._numbers: dict[int, int] = {}

    def prepare(self, actor: str, name: str, version: int,
                pairs: Iterable[str]) -> tuple[dict[str, Any], MigrationPlan]:
        Administration(self.store).require_admin(actor)
        row = self.store.definitions.numbered(name, version)
        if row["status"] != "published":
            raise MoveRefused(_("{name}@{version} is {status}; only a published version can take running "
                                "cases").format(name=name, version=version, status=row['status']))
        target = self.service.definition(row["id"])
        state_map = parse_state_map(pairs, target)
        running = (case for chunk in self._chunks(name, row["id"], 1000) for _, case in chunk)
        return row, plan(target, version, state_map, running, self.service.engine.calendar)

    def apply(self, actor: str, row: dict[str, Any], report: MigrationPlan, chunk: int = 500,
              progress: Callable[[int], None] | None = None) -> int:
        """Migrate every running case; refuses while any would be stranded.

        Each chunk commits on its own; an error in one (a busy database, a case changed
        meanwhile) stops the run with ``StoppedPartWay``, which says how many cases were
        migrated before it. Running the migration again moves only the cases still on other
        versions, so nothing is migrated twice.
        """
        from memberflow.storage.store import MoveOrder

        if report.stranded:
            raise MoveRefused(stranded_text(report))
        moved = 0
        for cases in self._chunks(report.target.name, row["id"], chunk):
            if not cases:
                continue
            try:
                self.store.move_many([MoveOrder(record.id, self._decide(actor, row, report))
                                      for record, _ in cases], actor)
            except Exception as cause:
                raise StoppedPartWay(
                    _("stopped at the chunk of cases {id}–{id2}: {reason}; {moved} case(s) migrated and "
                      "committed before it; run the migration again to continue (cases already migrated "
                      "are not moved again)").format(
                        id=cases[0][0].id, id2=cases[-1][0].id, reason=StoppedPartWay.reason(cause),
                        moved=moved), cause) from cause
            moved += len(cases)
            if progress:
                progress(len(cases))
        return moved

    def _chunks(self, name: str, target_id: int,
                size: int) -> Iterator[list[tuple[CaseRecord, RunningCase]]]:
        after = 0
        while records := self.store.cases.on_other_versions(name, target_id, after, size):
            after = records[-1].id
            running = [(r, self._running(r)) for r in records]
            yield [(r, case) for r, case in running if case is not None]

    def _running(self, record: CaseRecord) -> RunningCase | None:
        definition = self.service.definition(record.definition_id)
        if definition.states[record.state].terminal:
            return None
        number = self._numbers.get(record.definition_id)
        if number is None:
            number = self._numbers[record.definition_id] = \
                self.store.definitions.by_id(record.definition_id)["version"]
        return RunningCase(record.id, number, definition, record.state, record.facts)

    def _decide(self, actor: str, row: dict[str, Any],
                report: MigrationPlan) -> Callable[[MoveSnapshot], MoveWrite]:
        from memberflow.app.service import stored_due
        from memberflow.storage.cases import EventDraft
        from memberflow.storage.store import MoveWrite

        def decide(snapshot: MoveSnapshot) -> MoveWrite:
            case = self._running(snapshot.case)
            to = landing(case.state, report.target, report.state_map) if case else None
            if case is None or to is None:
                raise MoveRefused(_("case {id} changed during the migration; run it again").format(
                                      id=snapshot.case.id))
            payload = migration_payload(case, report.target, report.target_version, to)
            facts = carried_facts(case, report.target)
            calendar = self.service.engine.calendar
            due = stored_due(open_deadlines(report.target, to, facts, calendar), calendar)
            draft = EventDraft(MIGRATION_KIND, MIGRATION_TRIGGER, actor, ADMINISTRATOR, today(), payload)
            return MoveWrite(to, facts, due, draft, {}, repin=(row["id"], row["sha256"]))

        return decide
