"""SQLite tuned for a web server: WAL, and write transactions that take the
write lock up front, one at a time per process.

Transactions are begun by keel rather than by the driver (SQLAlchemy's
recipe for aiosqlite): a read runs each statement in autocommit, as
PostgreSQL's reads do; a write begins with ``BEGIN IMMEDIATE``, so it never
fails with "database is locked" when a deferred reader would try to upgrade,
after queueing on an asyncio lock, so that this process's writers wait in
arrival order on the loop instead of in SQLite's sleeping busy handler.
Another process's lock (``keel seed``, a second server) is waited out by
SQLite's ``busy_timeout`` on aiosqlite's thread, or with asyncio sleeps for
a driver that runs on the loop (``keel.core.accelerators.sqlite_inline``).

Checkpoints (copying the WAL's pages back into the database file, and
syncing both) run on a thread of their own (``WalCheckpointer``), started by
the processes that serve: SQLite's default runs one inside the commit that
grows the WAL past 1,000 pages, which is on the event loop's thread with
the inline driver, holding every request for its copy and two syncs. A
commit still checkpoints past ``FALLBACK_CHECKPOINT_PAGES``, so the WAL stays
bounded in a process without the thread, or when the thread falls behind.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_

from keel.core.logging import get_logger

# Execution option marking a connection that will write: BEGIN IMMEDIATE.
WRITE_OPTION = "keel_write"
# Execution option marking a connection that only reads: no BEGIN at all,
# each statement its own snapshot.
READ_OPTION = "keel_read"
_HOLDS_WRITE_QUEUE = "keel_holds_write_queue"
_RETRY_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05)
# WAL pages past which a commit checkpoints itself (SQLite's default: 1,000):
# ~40 MiB, reached only without the checkpointer's thread, or far behind it.
FALLBACK_CHECKPOINT_PAGES = 10_000
_log = get_logger("keel.db")


def _begin_immediate_on_loop(dbapi_connection: Any, busy_timeout_ms: int) -> None:
    """BEGIN IMMEDIATE on a connection that runs on the loop's thread: another
    process's write lock is waited out with asyncio sleeps, never with
    SQLite's busy handler, which would hold the loop."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    dbapi_connection.execute("PRAGMA busy_timeout=0")
    try:
        for attempt in range(1_000_000):
            try:
                dbapi_connection.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) or time.monotonic() >= deadline:
                    # Raised the way SQLAlchemy raises driver errors everywhere else.
                    raise exc.OperationalError("BEGIN IMMEDIATE", None, error) from error
            await_(asyncio.sleep(_RETRY_S[min(attempt, len(_RETRY_S) - 1)]))
    finally:
        dbapi_connection.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")


def configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int, *, waits_on_loop: bool, read_only: bool) -> None:
    """Pragmas on every new connection; keel's BEGIN and write queue (see the
    module), unless the engine is ``read_only`` (every statement in
    autocommit). ``waits_on_loop``: the driver runs statements on the loop's
    thread, so another process's lock is waited out with asyncio sleeps."""

    @event.listens_for(engine.sync_engine, "connect")
    def _configure(dbapi_connection: Any, _: Any) -> None:
        dbapi_connection.isolation_level = None  # keel emits BEGIN itself
        cursor = dbapi_connection.cursor()
        for pragma in (
            "PRAGMA journal_mode=WAL",
            "PRAGMA synchronous=NORMAL",
            "PRAGMA foreign_keys=ON",
            f"PRAGMA busy_timeout={int(busy_timeout_ms)}",
            f"PRAGMA wal_autocheckpoint={FALLBACK_CHECKPOINT_PAGES}",
        ):
            cursor.execute(pragma)
        cursor.close()

    if not read_only:
        _install_write_transactions(engine, busy_timeout_ms, waits_on_loop=waits_on_loop)


def _install_write_transactions(engine: AsyncEngine, busy_timeout_ms: int, *, waits_on_loop: bool) -> None:
    write_queue: asyncio.Lock | None = None

    def queue() -> asyncio.Lock:
        nonlocal write_queue
        if write_queue is None:  # created on first use, inside the serving loop
            write_queue = asyncio.Lock()
        return write_queue

    def release(info: dict[str, Any]) -> None:
        if info.pop(_HOLDS_WRITE_QUEUE, False):
            queue().release()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(connection: Any) -> None:
        options = connection.get_execution_options()
        if options.get(READ_OPTION, False):
            return
        if not options.get(WRITE_OPTION, False):
            connection.exec_driver_sql("BEGIN")
            return
        await_(queue().acquire())
        connection.info[_HOLDS_WRITE_QUEUE] = True
        try:
            if waits_on_loop:
                _begin_immediate_on_loop(connection.connection.dbapi_connection, busy_timeout_ms)
            else:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            release(connection.info)
            raise

    @event.listens_for(engine.sync_engine, "commit")
    @event.listens_for(engine.sync_engine, "rollback")
    def _end(connection: Any) -> None:
        release(connection.info)

    @event.listens_for(engine.sync_engine.pool, "checkin")
    def _checked_in(_: Any, record: Any) -> None:
        # A connection returned (or invalidated) mid-transaction still frees the queue.
        release(record.info)


class WalCheckpointer:
    """Checkpoints a SQLite file's WAL every ``every_s`` on a thread of its
    own, with a connection of its own. PASSIVE: it never waits for (or
    holds up) a reader or writer, copying what no reader still needs; the
    standard ``sqlite3`` module lets go of the GIL while SQLite works, so the
    copy and syncs run beside the event loop, not on it."""

    def __init__(self, path: Path, *, every_s: float) -> None:
        self.path = path
        self.every_s = every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="keel-sqlite-checkpoints", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop after the checkpoint under way, if any (a last one is left to SQLite's close)."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        try:
            while not self._stop.wait(self.every_s):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as error:  # the next round tries again; a commit past the fallback meanwhile
                    _log.warning("sqlite.checkpoint_failed", error=type(error).__name__)
        finally:
            connection.close()
