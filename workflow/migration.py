"""Moving running cases from one definition version to another, decided before anything is written.

A case keeps its name of state when the target version still has that state, or lands where
the administrator's map sends it; a case with nowhere to land is *stranded*, and nothing is
applied while any case would be. Facts carry over unchanged, so clocks do not restart — but
for a step the old version reads as closed that the new one would have removed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memberflow.app.administration import ADMINISTRATOR, Administration
from memberflow.errors import BadInput, MoveRefused, StoppedPartWay
from memberflow.workflow.dates import today
from memberflow.workflow.deadlines import OpenDeadline, open_deadlines
from memberflow.workflow.definition import Definition
from memberflow.workflow.guards import is_pending
from memberflow.workflow.workdays import WorkingCalendar

if TYPE_CHECKING:
    from memberflow.app.service import Service
    from memberflow.storage.cases import CaseRecord
    from memberflow.storage.store import MoveSnapshot, MoveWrite

MIGRATION_KIND, MIGRATION_TRIGGER = "migration", "migrate_definition"


@dataclass(frozen=True)
class RunningCase:
    """What a migration needs to know of one case still under way."""

    case_id: int
    version: int
    definition: Definition
    state: str
    facts: Mapping[str, Any]


@dataclass
class MigrationPlan:
    target: Definition
    target_version: int
    state_map: dict[str, str]
    landings: Counter[tuple[int, str, str | None]] = field(default_factory=Counter)
    deadline_changes: Counter[str] = field(default_factory=Counter)
    cleared: Counter[str] = field(default_factory=Counter)  # facts removed (cleared_on_migration)
    cases: int = 0

    @property
    def stranded(self) -> dict[tuple[int, str], int]:
        return {(version, state): count for (version, state, to), count in self.landings.items()
                if to is None}

    @property
    def vanishing(self) -> list[str]:
        return sorted({state for (_, state) in self.stranded})


def parse_state_map(pairs: Iterable[str], target: Definition) -> dict[str, str]:
    """``OLD=NEW`` pairs; NEW must be a state of the target version."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise BadInput(f"--map {pair!r} must be OLD_STATE=NEW_STATE")
        if new.strip() not in target.states:
            raise BadInput(f"--map {pair!r}: {target.name} version has no state {new.strip()!r}")
        mapping[old.strip()] = new.strip()
    return mapping


def landing(state: str, target: Definition, state_map: Mapping[str, str]) -> str | None:
    if state in state_map:
        return state_map[state]
    return state if state in target.states else None


def cleared_on_migration(case: RunningCase, target: Definition) -> list[str]:
    """Facts the target version would already have removed from the case.

    A version closing a step with the superseded ``pending`` guard leaves the step's date
    recorded once closed (a later closing date says so); a version closing it by ``clears:``
    removes it. So a step ``pending`` reads as closed loses what the target's closing move
    clears — else a proposal dismissed under the old version would read as open under the new.
    """
    closed = {g.params["opened"] for t in case.definition.transitions for g in t.guards
              if g.name == "pending" and case.facts.get(g.params["opened"]) is not None
              and not is_pending(case.facts, g.params["opened"], g.params["closed"])}
    return sorted({name for t in target.transitions if closed & set(t.clears)
                   for name in t.clears if name in case.facts})


def carried_facts(case: RunningCase, target: Definition) -> dict[str, Any]:
    cleared = cleared_on_migration(case, target)
    return {name: value for name, value in case.facts.items() if name not in cleared}


def plan(target: Definition, target_version: int, state_map: dict[str, str],
         running: Iterable[RunningCase], calendar: WorkingCalendar) -> MigrationPlan:
    """The impact report: where each running case lands and which open deadlines change."""
    report = MigrationPlan(target, target_version, state_map)
    for case in running:
        report.cases += 1
        to = landing(case.state, target, state_map)
        report.landings[(case.version, case.state, to)] += 1
        if to is not None:
            before = open_deadlines(case.definition, case.state, case.facts, calendar)
            after = open_deadlines(target, to, carried_facts(case, target), calendar)
            report.cleared.update(cleared_on_migration(case, target))
            for change in deadline_changes(before, after):
                report.deadline_changes[change] += 1
    return report


def deadline_changes(before: list[OpenDeadline], after: list[OpenDeadline]) -> list[str]:
    """Sentences for deadlines that appear, vanish or move (one per move with a deadline)."""
    old = {d.trigger: d.due_on for d in before}
    new = {d.trigger: d.due_on for d in after}
    changes = []
    for trigger in sorted(old.keys() | new.keys()):
        if trigger not in new:
            changes.append(f"{trigger}: deadline no longer runs")
        elif trigger not in old:
            changes.append(f"{trigger}: a deadline starts to run")
        elif old[trigger] != new[trigger]:
            shift = (new[trigger] - old[trigger]).days
            changes.append(f"{trigger}: due {abs(shift)} days {'later' if shift > 0 else 'earlier'}")
    return changes


def migration_payload(case: RunningCase, target: Definition, target_version: int,
                      to_state: str) -> dict[str, Any]:
    """Stored with the audit event, so replay can check the step and switch rule sets (and
    remove the facts the migration removed, listed under ``cleared`` when there are any)."""
    payload: dict[str, Any] = {"from_version": case.version, "from_sha256": case.definition.sha256,
                               "to_version": target_version, "to_sha256": target.sha256,
                               "state_map": {case.state: to_state}}
    cleared = cleared_on_migration(case, target)
    if cleared:
        payload["cleared"] = cleared
    return payload


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
            raise MoveRefused(f"{name}@{version} is {row['status']}; only a published version "
                              "can take running cases")
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
            raise MoveRefused(_stranded_text(report))
        moved = 0
        for cases in self._chunks(report.target.name, row["id"], chunk):
            if not cases:
                continue
            try:
                self.store.move_many([MoveOrder(record.id, self._decide(actor, row, report))
                                      for record, _ in cases], actor)
            except Exception as cause:
                raise StoppedPartWay(
                    f"stopped at the chunk of cases {cases[0][0].id}–{cases[-1][0].id}: "
                    f"{StoppedPartWay.reason(cause)}; "
                    f"{moved} case(s) migrated and committed before it; run the migration again "
                    "to continue (cases already migrated are not moved again)", cause) from cause
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
                raise MoveRefused(f"case {snapshot.case.id} changed during the migration; run it again")
            payload = migration_payload(case, report.target, report.target_version, to)
            facts = carried_facts(case, report.target)
            calendar = self.service.engine.calendar
            due = stored_due(open_deadlines(report.target, to, facts, calendar), calendar)
            draft = EventDraft(MIGRATION_KIND, MIGRATION_TRIGGER, actor, ADMINISTRATOR, today(), payload)
            return MoveWrite(to, facts, due, draft, {}, repin=(row["id"], row["sha256"]))

        return decide


def _stranded_text(report: MigrationPlan) -> str:
    cases = sum(report.stranded.values())
    return (f"{cases} running case(s) would be stranded: {report.target.name}@{report.target_version} "
            f"has no state {', '.join(report.vanishing)}; give --map OLD=NEW for each")
