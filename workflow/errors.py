"""Domain errors raised by the workflow layer; the CLI maps each kind to one exit code."""

from __future__ import annotations

from dataclasses import dataclass


class MemberflowError(Exception):
    """Base of every error a user can cause; its message is one plain sentence."""


class BadInput(MemberflowError):
    """The request itself is malformed: a value that cannot be parsed or is out of range."""


class NotFound(MemberflowError):
    """A case, person, organization, user or definition named by the user does not exist."""


class NotPermitted(MemberflowError):
    """The actor holds no role grant that allows the requested action."""


class MoveRefused(MemberflowError):
    """The procedure forbids the move: wrong state, or one or more rules do not hold."""

    def __init__(self, summary: str, reasons: list[str] | None = None) -> None:
        self.summary = summary
        self.reasons = list(reasons or [])
        detail = "; ".join(self.reasons)
        super().__init__(f"{summary}: {detail}" if detail else summary)


class AlreadyMoved(MemberflowError):
    """Another officer made the same move on the case first; this request writes nothing."""


class AuditFailed(MemberflowError):
    """Verification or replay found a record that is altered or not legal under its rules."""


@dataclass(frozen=True)
class Problem:
    """One finding in a definition file, pointed at by file and line."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class DefinitionInvalid(MemberflowError):
    """A definition failed validation; carries every problem found, not only the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0] if problems else "no details"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"invalid definition: {first}{more}")


class StoppedPartWay(MemberflowError):
    """Bulk work stopped by an error after part of it was committed. The message says where
    it stopped, why, how much was committed and how to go on; the exit code is the cause's."""

    def __init__(self, message: str, cause: Exception) -> None:
        super().__init__(message)
        self.cause = cause

    @staticmethod
    def reason(cause: Exception) -> str:
        """What stopped the work, in one line (a bug shows as one, not as a domain sentence)."""
        from memberflow.storage.errors import StorageError

        if isinstance(cause, MemberflowError | StorageError):
            return str(cause)
        return f"internal error: {type(cause).__name__}: {cause}"
