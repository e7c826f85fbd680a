"""A real second connection that makes bulk work's writes fail part-way, for the tests that
check what a stopped run reports and that running it again does nothing twice."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

LOCK_AFTER = r"""
import sqlite3, sys
path, trigger, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
conn = sqlite3.connect(path, isolation_level=None, timeout=0)


def committed():
    try:
        return conn.execute('SELECT count(*) FROM audit_events WHERE "trigger" = ?',
                            (trigger,)).fetchone()[0]
    except sqlite3.OperationalError:  # a reader may be told "busy" for a moment (timeout 0)
        return 0


while committed() < count:
    pass
while True:  # spin: SQLite's busy handler sleeps, and would let the writer take every turn
    try:
        conn.execute("BEGIN IMMEDIATE")
        break
    except sqlite3.OperationalError:
        pass
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


@contextmanager
def storage_fails_during(db: str, trigger: str, after: int, case_id: int) -> Iterator[str]:
    """A real second connection makes the bulk run's writes fail part-way; yields the URL the
    run must use.

    SQLite: a process waits until ``after`` events of ``trigger`` are committed, then takes
    the write lock and holds it past the busy timeout (the run stops at the next row it
    writes: that row, or one or two later). PostgreSQL: this process holds the row lock of
    case ``case_id``, and cancels the run's statement once it waits for it (what a lock or
    statement timeout does), so the run stops exactly at that case.
    """
    if not db.startswith("postgresql"):
        holder = subprocess.Popen([sys.executable, "-c", LOCK_AFTER, db, trigger, str(after)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        try:
            yield db
        finally:
            assert holder.stdin is not None
            out, err = holder.communicate("release\n", timeout=60)
            assert out == "locked\n", f"the lock was never taken: the run ended first ({err})"
        return
    tag = f"mf_stop_{uuid.uuid4().hex[:12]}"
    engine = create_engine(db)
    done = threading.Event()

    def cancel_once_waiting() -> None:
        while not done.is_set():
            with engine.connect() as conn:
                pid = conn.execute(text(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = :tag "
                    "AND wait_event_type = 'Lock'"), {"tag": tag}).scalar()
                if pid is not None:
                    conn.execute(text("SELECT pg_cancel_backend(:pid)"), {"pid": pid})
                    return
            time.sleep(0.01)

    watcher = threading.Thread(target=cancel_once_waiting)
    try:
        with engine.begin() as holder:
            holder.execute(text("SELECT id FROM cases WHERE id = :id FOR UPDATE"), {"id": case_id})
            watcher.start()
            try:
                yield f"{db}&application_name={tag}"
            finally:
                done.set()
                watcher.join(timeout=60)
    finally:
        engine.dispose()
