"""Re-pinning running cases to another definition version (``definition migrate``), decided
before anything is written.

A case keeps its name of state when the target version still has that state, or lands where
the administrator's map sends it; a case with nowhere to land is *stranded*, and nothing is
applied while any case would be. Facts carry over unchanged, so clocks do not restart — but
for a step the old version reads as closed that the new one would have removed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from memberflow.errors import BadInput
from memberflow.i18n import _
from memberflow.workflow.deadlines import OpenDeadline, open_deadlines
from memberflow.workflow.definition import Definition
from memberflow.workflow.guards import is_pending
from memberflow.workflow.workdays import WorkingCalendar

if TYPE_CHECKING:
    pass

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
            raise BadInput(_("--map {pair!r} must be OLD_STATE=NEW_STATE").format(pair=pair))
        if new.strip() not in target.states:
            raise BadInput(_("--map {pair!r}: {name} version has no state {new!r}").format(
                               pair=pair, name=target.name, new=new.strip()))
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
            changes.append(_("{trigger}: deadline no longer runs").format(trigger=trigger))
        elif trigger not in old:
            changes.append(_("{trigger}: a deadline starts to run").format(trigger=trigger))
        elif old[trigger] != new[trigger]:
            shift = (new[trigger] - old[trigger]).days
            moved = _("{trigger}: due {shift} days later") if shift > 0 else \
                _("{trigger}: due {shift} days earlier")
            changes.append(moved.format(trigger=trigger, shift=abs(shift)))
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


def stranded_text(report: MigrationPlan) -> str:
    cases = sum(report.stranded.values())
    return (_("{cases} running case(s) would be stranded: {name}@{target_version} has no state "
              "{vanishing}; give --map OLD=NEW for each").format(
                cases=cases, name=report.target.name, target_version=report.target_version,
                vanishing=', '.join(report.vanishing)))
