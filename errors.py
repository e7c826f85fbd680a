"""The one tree of errors a user can cause or must act on.

Every layer raises these; each front end maps them, in one place, to what its users see
(``cli.py``: exit codes; the web app: HTTP statuses). A message is one plain sentence.
"""

from __future__ import annotations

from dataclasses import dataclass

from memberflow.i18n import _, ngettext


class MemberflowError(Exception):
    """Base of every error a user can cause or must act on."""


class BadInput(MemberflowError):
    """The request itself is malformed: a value that cannot be parsed, is out of range, or
    describes something impossible."""


class Duplicate(BadInput):
    """A record with the same unique key already exists."""


@dataclass(frozen=True)
class Problem:
    """One finding in a definition file, pointed at by file and line."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class DefinitionInvalid(BadInput):
    """A definition failed validation; carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0] if problems else _("no details")
        more = ngettext(" (and {count} more)", " (and {count} more)", len(problems) - 1).format(
            count=len(problems) - 1) if len(problems) > 1 else ""
        super().__init__(_("invalid definition: {first}{more}").format(first=first, more=more))


class NotFound(MemberflowError):
    """A case, person, organization, user or definition named by the user does not exist."""


class NotPermitted(MemberflowError):
    """The acting principal holds no grant that allows the requested action."""


class MoveRefused(MemberflowError):
    """The procedure forbids the move: wrong state, or one or more rules do not hold."""

    def __init__(self, summary: str, reasons: list[str] | None = None) -> None:
        self.summary = summary
        self.reasons = list(reasons or [])
        detail = "; ".join(self.reasons)
        super().__init__(f"{summary}: {detail}" if detail else summary)


class Conflict(MemberflowError):
    """Another writer changed the record first; re-read and try again."""


class AlreadyMoved(Conflict):
    """Another officer made the same move on the case first; this request writes nothing."""


class AlreadyApplied(Conflict):
    """A keyed move whose key the case's record already holds: that request was applied
    before (by an earlier run of the same file, or by a run racing this one)."""

    def __init__(self, case_id: int, seq: int, trigger: str, actor: str, recorded_at: str) -> None:
        super().__init__(_("case {case_id}: already done: {trigger} recorded by {actor} at {recorded_at} "
                           "(event {seq})").format(
                             case_id=case_id, trigger=trigger, actor=actor, recorded_at=recorded_at, seq=seq))
        self.case_id, self.seq, self.trigger = case_id, seq, trigger
        self.actor, self.recorded_at = actor, recorded_at


class RequestKeyTaken(Conflict):
    """The database refused an audit row whose request key the case already holds (the
    unique index behind the lookup ``AlreadyApplied`` comes from)."""


class Unavailable(MemberflowError):
    """The database cannot be opened, is locked too long, or is read-only."""


class Busy(Unavailable):
    """Another session held what this one needed past the wait allowed (PostgreSQL's lock or
    statement timeout); the same request may succeed when tried again."""


class AuditFailed(MemberflowError):
    """Verification or replay found a record that is altered or not legal under its rules."""


class StoppedPartWay(MemberflowError):
    """Bulk work stopped by an error after part of it was committed. The message says where
    it stopped, why, how much was committed and how to go on; the front end reports it as
    what stopped it (``cause``)."""

    def __init__(self, message: str, cause: Exception) -> None:
        super().__init__(message)
        self.cause = cause

    @staticmethod
    def reason(cause: Exception) -> str:
        """What stopped the work, in one line (a bug shows as one, not as a domain sentence)."""
        if isinstance(cause, MemberflowError):
            return str(cause)
        return _("internal error: {kind}: {cause}").format(kind=type(cause).__name__, cause=cause)
