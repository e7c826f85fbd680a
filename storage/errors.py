"""Storage errors: the CLI maps each kind to one exit code."""


class StorageError(Exception):
    """Base of storage failures a user can cause or must act on."""


class Conflict(StorageError):
    """Another writer changed the record first; re-read and try again."""


class Missing(StorageError):
    """A record named by the user does not exist."""


class Duplicate(StorageError):
    """A record with the same unique key already exists."""


class Unavailable(StorageError):
    """The database cannot be opened, is locked too long, or is read-only."""


class AlreadyApplied(StorageError):
    """A keyed move whose key the case's record already holds: that request was applied
    before (by an earlier run of the same file, or by a run racing this one)."""

    def __init__(self, case_id: int, seq: int, trigger: str, actor: str, recorded_at: str) -> None:
        super().__init__(f"case {case_id}: already done: {trigger} recorded by {actor} at "
                         f"{recorded_at} (event {seq})")
        self.case_id, self.seq, self.trigger = case_id, seq, trigger
        self.actor, self.recorded_at = actor, recorded_at


class RequestKeyTaken(Conflict):
    """The database refused an audit row whose request key the case already holds (the
    unique index behind the lookup ``AlreadyApplied`` comes from)."""


class Busy(Unavailable):
    """Another session held what this one needed past the wait allowed (PostgreSQL's lock or
    statement timeout); the same request may succeed when tried again."""
