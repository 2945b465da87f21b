"""SQLite for the async engine, run inline on the event loop's thread.

aiosqlite runs every driver call (cursor, execute, fetch, close) on a worker
thread and hands the result back: four or more thread hand-offs per
statement, each costing more than the statement itself on a warm SQLite
file (a primary-key read takes microseconds). This dialect gives SQLAlchemy's
asyncio layer the standard ``sqlite3`` module directly, so statements run
where the request runs.

What makes blocking calls safe here is that nothing inside them waits long:
readers never wait in WAL mode, and writers are queued *before* SQLite's
lock (see ``install_write_queue``), so a BEGIN IMMEDIATE never sleeps on a
lock held by another request of the same process. Another process holding
the lock (``keel seed``, a second server) is waited out with asyncio sleeps,
never with SQLite's blocking busy handler.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any

from sqlalchemy import event, exc, pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_

DRIVER_NAME = "sqlite+keel"
# Execution option marking a connection that will write: it begins with
# BEGIN IMMEDIATE, taking the write lock up front instead of failing with
# "database is locked" when a deferred reader tries to upgrade.
WRITE_OPTION = "keel_write"
# Execution option marking a connection that only reads: no BEGIN at all,
# each statement its own snapshot (as PostgreSQL's autocommit reads), which
# spares a read the BEGIN and COMMIT statements around it.
READ_OPTION = "keel_read"
_HOLDS_WRITE_QUEUE = "keel_holds_write_queue"
_RETRY_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05)


class InlineSQLiteDialect(SQLiteDialect_pysqlite):
    """pysqlite, declared async: SQLAlchemy runs it inside its greenlet bridge,
    where plain blocking calls simply run on the loop's thread."""

    driver = "keel"
    is_async = True
    supports_statement_cache = True

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        # The asyncio queue pool: waiting for a connection awaits, never blocks.
        return pool.AsyncAdaptedQueuePool if cls._is_url_file_db(url) else pool.StaticPool

    # SQLAlchemy's AsyncConnection insists that an async driver awaited
    # something; a completed coroutine satisfies it for about a microsecond.
    def do_execute(self, cursor: Any, statement: Any, parameters: Any, context: Any = None) -> None:
        await_(_nothing())
        super().do_execute(cursor, statement, parameters, context)  # type: ignore[no-untyped-call]

    def do_execute_no_params(self, cursor: Any, statement: Any, context: Any = None) -> None:
        await_(_nothing())
        super().do_execute_no_params(cursor, statement, context)  # type: ignore[no-untyped-call]

    def do_executemany(self, cursor: Any, statement: Any, parameters: Any, context: Any = None) -> None:
        await_(_nothing())
        super().do_executemany(cursor, statement, parameters, context)  # type: ignore[no-untyped-call]

    def connect(self, *args: Any, **kwargs: Any) -> Any:
        # The loop's thread is the only one that touches connections, but the
        # pool may be disposed from another (shutdown), so allow it.
        kwargs["check_same_thread"] = False
        kwargs["factory"] = _InlineConnection
        return super().connect(*args, **kwargs)


class _InlineCursor(sqlite3.Cursor):
    async def _async_soft_close(self) -> None:
        """The asyncio layer's "fetch everything now" hook: rows are local
        and fetched on demand, so there is nothing to do."""


class _InlineConnection(sqlite3.Connection):
    def cursor(self, factory: Any = _InlineCursor) -> Any:
        return super().cursor(factory)


async def _nothing() -> None:
    return None


registry.register("sqlite.keel", __name__, "InlineSQLiteDialect")


def _begin_immediate(dbapi_connection: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """BEGIN IMMEDIATE, waiting out another process's write lock on the loop."""
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


def install_write_queue(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    """Begin every transaction but a read's; writers one at a time per
    process, in arrival order.

    Write transactions queue on an asyncio lock before taking SQLite's: the
    lock is released when the transaction ends, however it ends.
    """
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
            connection.connection.dbapi_connection.execute("BEGIN")
            return
        await_(queue().acquire())
        connection.info[_HOLDS_WRITE_QUEUE] = True
        try:
            _begin_immediate(connection.connection.dbapi_connection, busy_timeout_ms)
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
