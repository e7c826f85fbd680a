"""What auditors ask of the record: verify its chains, checkpoint them, replay cases under
their rules, export it. Verifying, checkpointing and replaying take an auditor; an export
takes a grant covering what it returns (an officer may export their own subtree)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memberflow.errors import AuditFailed, NotFound
from memberflow.i18n import _

if TYPE_CHECKING:
    from memberflow.app.application import Application
    from memberflow.app.principal import Principal
    from memberflow.app.service import ReplaySummary
    from memberflow.storage.verification import Checkpoint, VerifyReport
    from memberflow.workflow.replay import ReplayResult

EXPORT_COLUMNS = ["case_id", "seq", "kind", "business_date", "recorded_at", "organization",
                  "person_id", "trigger", "from_state", "to_state", "to_label", "actor", "role",
                  "inputs", "documents", "definition_sha256", "prev_hash", "hash"]
Progress = Callable[[int], None] | None


class Audit:
    def __init__(self, app: Application) -> None:
        self.app = app
        self.access = app.access

    def events(self, principal: Principal) -> int:
        """How many events there are (what a progress bar counts to)."""
        self.access.require_auditor(principal, _("counting the record"))
        return self.app.store.cases.count_events()

    def verify(self, principal: Principal, case_id: int | None, checkpoint: Path | None,
               progress: Progress = None) -> VerifyReport:
        from memberflow.storage.verification import verify

        self.access.require_auditor(principal, _("audit verify"))
        report = verify(self.app.store.db, case_id, checkpoint, progress)
        if case_id is not None and report.cases == 0:
            raise NotFound(_("case {case} has no record (no case row, no audit events)")
                           .format(case=case_id))
        return report

    def checkpoint(self, principal: Principal, output: Path | None) -> Checkpoint:
        from memberflow.storage.verification import take_checkpoint

        self.access.require_auditor(principal, _("audit checkpoint"))
        return take_checkpoint(self.app.store.db, output)

    def replay(self, principal: Principal, case_id: int) -> ReplayResult:
        from memberflow.storage.verification import case_histories

        self.access.require_auditor(principal, _("audit replay"))
        service = self.app.service
        service.store.cases.load(case_id)
        result = next((service.replayer().replay(cid, events)
                       for cid, events in case_histories(service.store.db, case_id)), None)
        if result is None:
            raise AuditFailed(_("case {case} has no audit events").format(case=case_id))
        return result

    def replay_all(self, principal: Principal, progress: Progress = None) -> ReplaySummary:
        self.access.require_auditor(principal, _("audit replay"))
        return self.app.service.replay_all(progress)

    def export(self, principal: Principal, since: str | None, case_id: int | None,
               org_code: str | None, lang: str) -> Iterator[dict[str, Any]]:
        """The record's events as rows (``EXPORT_COLUMNS``), streamed in case and seq order;
        access is checked before the first row is asked for."""
        from memberflow.storage.verification import export_rows

        scope = self.access.require_scope(principal, org_code)
        if case_id is not None:
            record = self.app.store.cases.load(case_id)
            self.access.require_reader_at(principal, record.organization_id,
                                          record.organization_code,
                                          _("case {case}").format(case=case_id))
        rows = export_rows(self.app.store.db, since, case_id, scope)
        return (self._export_row(event, lang) for event in rows)

    def _export_row(self, event: dict[str, Any], lang: str) -> dict[str, Any]:
        definition = self.app.service.definition_by_sha(event["definition_sha256"])
        state = definition.states.get(event["to_state"]) if definition else None
        payload = json.loads(event["payload"])
        day = event["business_date"]
        return {
            **{key: event[key] for key in EXPORT_COLUMNS if key in event},
            "business_date": day.isoformat() if hasattr(day, "isoformat") else day,
            "to_label": state.labels.get(lang) if state else event["to_state"],
            "inputs": json.dumps(payload.get("inputs", {}), ensure_ascii=False, sort_keys=True),
            "documents": json.dumps(payload.get("documents", {}), ensure_ascii=False, sort_keys=True),
        }
