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


class Busy(Unavailable):
    """Another session held what this one needed past the wait allowed (PostgreSQL's lock or
    statement timeout); the same request may succeed when tried again."""
