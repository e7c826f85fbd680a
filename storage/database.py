"""Opening a database by URL: SQLite file by default (WAL), any SQLAlchemy URL otherwise."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from memberflow.errors import Busy, Conflict, MemberflowError, RequestKeyTaken, Unavailable
from memberflow.i18n import _
from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

DEFAULT_URL = "sqlite:///memberflow.db"
BUSY_TIMEOUT_MS = 5000
# PostgreSQL: a statement waits for a lock as long as SQLite waits for its write lock, and runs
# for at most a minute; reads over the whole record (audit, reports, schema upgrades) lift the
# latter with ``connect(unbounded=True)``. A value the server, role or URL options already set
# is kept, so an administrator can change either.
LOCK_TIMEOUT_MS = BUSY_TIMEOUT_MS
STATEMENT_TIMEOUT_MS = 60_000
_LOCK_NOT_AVAILABLE, _QUERY_CANCELED = "55P03", "57014"


def normalize_url(target: str | None) -> str:
    """A plain path means an SQLite file; anything with ``://`` is a SQLAlchemy URL."""
    if not target:
        return DEFAULT_URL
    if "://" in target:
        return target
    return f"sqlite:///{target}"


@contextmanager
def _owner_only(sqlite: bool) -> Iterator[None]:
    """Files SQLite creates meanwhile are its owner's alone (0600): the database, and so its
    -wal and -shm, which SQLite always gives the database file's mode."""
    if not sqlite:
        yield
        return
    before = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(before)


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # WAL + NORMAL never corrupts the file; a power cut may lose the last commits only. WAL is
    # a property of the file, set once when the schema is created, so merely opening some
    # other SQLite file never changes it.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.close()


def _postgresql_timeouts(dbapi_connection: Any, _record: object) -> None:
    """Bound every wait of the session (the hot path's bare connection included), unless the
    server, the role or the URL's options already bound it."""
    cursor = dbapi_connection.cursor()
    cursor.execute("SELECT set_config(name, value, false) FROM (VALUES "
                   f"('lock_timeout', '{int(LOCK_TIMEOUT_MS)}'), "
                   f"('statement_timeout', '{int(STATEMENT_TIMEOUT_MS)}')) AS t(name, value) "
                   "WHERE current_setting(name) = '0'")
    cursor.close()
    dbapi_connection.commit()


class Database:
    """One engine per process; ``must_exist`` keeps a typo in a path from creating a new file."""

    def __init__(self, target: str | None, must_exist: bool = True) -> None:
        self.url = normalize_url(target)
        try:
            url = make_url(self.url)
        except ArgumentError:
            raise Unavailable(_("database URL {url!r} is not valid").format(url=self.url)) from None
        self.is_sqlite = url.get_backend_name() == "sqlite"
        if self.is_sqlite:
            self._check_sqlite_file(url.database, must_exist)
        try:
            self.engine: Engine = create_engine(self.url)
        except (ArgumentError, ImportError) as exc:
            raise Unavailable(_("cannot use database URL {url!r}: {exc}").format(
                                  url=self.url, exc=exc)) from None
        self.backend = url.get_backend_name()
        if self.is_sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        elif self.backend == "postgresql":
            event.listen(self.engine, "connect", _postgresql_timeouts)
        self._driver_errors: type[Exception] = self.engine.dialect.loaded_dbapi.Error
        # The move hot path's connection, kept checked out between moves (see ``driver_write``).
        self._kept: PoolProxiedConnection | None = None
        self._kept_pid = 0
        self._kept_lock = threading.Lock()

    @staticmethod
    def _check_sqlite_file(database: str | None, must_exist: bool) -> None:
        if not database or database == ":memory:":
            raise Unavailable(_("an SQLite database must be a file path, not in memory"))
        path = Path(database)
        if must_exist and not path.exists():
            raise Unavailable(_("database file {database} does not exist; run 'memberflow init'").format(
                                  database=database))
        if path.exists() and not os.access(path, os.W_OK):
            raise Unavailable(_("database file {database} is read-only").format(database=database))
        if not path.parent.exists():
            raise Unavailable(_("folder {parent} for database {database} does not exist").format(
                                  parent=path.parent, database=database))

    def create_schema(self) -> None:
        """Create or upgrade the schema through the migrations (the only way it is built).
        Another application's database is refused before anything is changed in it."""
        from memberflow.storage.schema_upgrade import state, upgrade

        with _owner_only(self.is_sqlite):
            state(self)
            if self.is_sqlite:
                with self.engine.connect() as conn:
                    conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            upgrade(self)

    @property
    def sqlite_path(self) -> Path | None:
        return Path(make_url(self.url).database or "") if self.is_sqlite else None

    def readable_by_others(self) -> str | None:
        """A warning when the SQLite file (or its -wal, -shm) can be read by users other than
        its owner: it holds ethnicity, religion and disciplinary records."""
        main = self.sqlite_path
        if main is None:
            return None
        for path in (main, Path(f"{main}-wal"), Path(f"{main}-shm")):
            try:
                found = path.stat()
            except OSError:
                continue
            mode = stat.S_IMODE(found.st_mode)
            if stat.S_ISREG(found.st_mode) and mode & 0o044:
                return (_("warning: {path} can be read by other users (mode {mode:04o}) and holds personal "
                          "records; restrict it: chmod 600 {main}*").format(path=path, mode=mode, main=main))
        return None

    def has_schema(self) -> bool:
        with self.connect() as conn:
            return inspect(conn).has_table("audit_events")

    @contextmanager
    def connect(self, unbounded: bool = False) -> Iterator[Connection]:
        """A connection inside one transaction, committed on success, rolled back on error.

        ``unbounded`` lifts the statement timeout for this transaction: for reads over the
        whole record (audit verify, export, replay, reports) and schema upgrades, which may
        rightly take minutes on a national database. Lock waits stay bounded."""
        try:
            with self.engine.begin() as conn:
                if unbounded and self.backend == "postgresql":
                    conn.exec_driver_sql("SET LOCAL statement_timeout = 0")
                yield conn
        except DBAPIError as exc:
            raise self._storage_error(exc.orig if exc.orig is not None else exc) from None

    @contextmanager
    def write(self, unbounded: bool = False) -> Iterator[Connection]:
        """A transaction that will write: on SQLite it takes the write lock up front
        (BEGIN IMMEDIATE), so a read-then-write never fails on a stale snapshot."""
        with self.connect(unbounded) as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn

    @contextmanager
    def driver_write(self) -> Iterator[Any]:
        """A write transaction on the bare driver connection; yields a DBAPI cursor.

        This is the move hot path: SQLAlchemy's per-statement work and a pool checkout per
        transaction cost several times what the database itself does for a move, so the
        connection stays checked out between moves and the caller runs its own fixed SQL.
        The transaction is the same as ``write``'s: BEGIN IMMEDIATE on SQLite, commit on
        success, rollback on any error, driver errors mapped to the same storage errors. A
        second thread arriving while the kept connection is busy gets a pooled one.
        """
        kept = self._kept_lock.acquire(blocking=False)
        try:
            try:
                fairy = self._kept_connection() if kept else self.engine.raw_connection()
            except DBAPIError as exc:  # server down, too many connections: exit 6, not a crash
                raise self._storage_error(exc.orig if exc.orig is not None else exc) from None
            conn, reusable = fairy.driver_connection, False
            try:
                cursor = conn.cursor()
                if self.is_sqlite:
                    cursor.execute("BEGIN IMMEDIATE")
                try:
                    yield cursor
                    conn.commit()
                except BaseException as exc:
                    # A refused move leaves a sound connection; a driver error may not.
                    reusable = _rolled_back(conn) and not isinstance(exc, self._driver_errors)
                    raise
                reusable = True
            except self._driver_errors as exc:
                raise self._storage_error(exc) from None
            finally:
                self._after_driver_use(fairy, kept, reusable)
        finally:
            if kept:
                self._kept_lock.release()

    def _kept_connection(self) -> PoolProxiedConnection:
        """The connection kept for moves; a forked child never touches its parent's."""
        if self._kept is None or self._kept_pid != os.getpid():
            self._kept = self.engine.raw_connection()
            self._kept_pid = os.getpid()
        return self._kept

    def _after_driver_use(self, fairy: PoolProxiedConnection, kept: bool, reusable: bool) -> None:
        """Keep or return a sound connection; one a driver error went through may be broken
        (lost server, failed rollback), so it is closed for good and the next move starts
        afresh."""
        if reusable:
            if not kept:
                fairy.close()
            return
        with suppress(Exception):
            fairy.invalidate()
        if kept:
            self._kept = None

    def _storage_error(self, exc: BaseException) -> MemberflowError:
        """The storage error a driver error means, on every path (``connect``, ``write``,
        ``driver_write``)."""
        dbapi = self.engine.dialect.loaded_dbapi
        text = _text_line(exc)
        busy = _timed_out(exc)
        if busy is not None:
            return busy
        if isinstance(exc, dbapi.IntegrityError):
            return _refused_write(text)
        if isinstance(exc, dbapi.OperationalError):
            return Unavailable(_describe_text(text))
        return Unavailable(_("database error: {text}").format(text=text))

    def dispose(self) -> None:
        with self._kept_lock:
            if self._kept is not None and self._kept_pid == os.getpid():
                with suppress(Exception):
                    self._kept.close()
            self._kept = None
        self.engine.dispose()


def _refused_write(text: str) -> Conflict:
    """A constraint refused the write; the request-key index (both databases name its
    column or index in the message's first line) means the request was applied before."""
    kind = RequestKeyTaken if "request_key" in text else Conflict
    return kind(_("the database refused the write ({text}); nothing was saved").format(text=text))


def _rolled_back(conn: Any) -> bool:
    try:
        conn.rollback()
    except Exception:
        return False
    return True


def _text_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _timed_out(exc: BaseException) -> Busy | None:
    """PostgreSQL's lock timeout (SQLSTATE 55P03) or statement timeout (57014), as the
    busy database they mean; None for any other error."""
    state = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if state == _LOCK_NOT_AVAILABLE:
        return Busy(_("another session held what this command needs for over {lock_timeout_ms} ms; try "
                      "again").format(lock_timeout_ms=LOCK_TIMEOUT_MS))
    if state == _QUERY_CANCELED:
        return Busy(_("the database did not answer within {seconds:g} s (statement timeout); try again "
                      "later").format(seconds=STATEMENT_TIMEOUT_MS / 1000))
    return None


def _describe_text(text: str) -> str:
    if "locked" in text or "busy" in text:
        return _("database is busy (another writer held it for over {busy_timeout_ms} ms); retry").format(
                   busy_timeout_ms=BUSY_TIMEOUT_MS)
    if "readonly" in text or "read-only" in text:
        return _("database is read-only")
    return _("database error: {text}").format(text=text)
