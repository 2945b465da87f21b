"""Accelerator: SQLite statements run on the event loop's thread, not aiosqlite's.

aiosqlite runs every driver call (cursor, execute, fetch, close, and the
rollback a connection gets when it goes back to the pool) on the
connection's worker thread and hands the result back: four or more thread
hand-offs per statement, each costing more than a primary-key read on a
warm SQLite file. Here the standard ``sqlite3`` module is wrapped in the
asyncio driver protocol SQLAlchemy's asyncio layer adapts
(``AsyncIODBAPIConnection`` / ``AsyncIODBAPICursor``, adapted by SQLAlchemy's
own ``AsyncAdapt_dbapi_connection``): each call completes at once, where the
request runs.

Blocking calls are safe here because nothing inside them waits long: readers
never wait in WAL mode, writers queue on the loop before SQLite's lock (see
``keel.core.sqlite``), and statements that may run long go to a database of
their own on aiosqlite (``Database.long_reads``). Kept while the A/B in
docs/performance.md shows a target missed without it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, Self, cast

from sqlalchemy import pool
from sqlalchemy.connectors.asyncio import AsyncAdapt_dbapi_connection, AsyncAdapt_dbapi_module, AsyncIODBAPIConnection
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL

DRIVER_NAME = "sqlite+keel_inline"


class InlineCursor:
    """A ``sqlite3`` cursor behind the asyncio cursor protocol."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self.cursor = cursor

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.cursor.close()

    @property
    def description(self) -> Any:
        return self.cursor.description

    @property
    def rowcount(self) -> int:
        return self.cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self.cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self.cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self.cursor.arraysize = value

    async def execute(self, operation: str, parameters: Sequence[Any] | dict[str, Any] = ()) -> Self:
        self.cursor.execute(operation, parameters)
        return self

    async def executemany(self, operation: str, seq_of_parameters: Iterable[Any]) -> Self:
        self.cursor.executemany(operation, seq_of_parameters)
        return self

    async def fetchone(self) -> Any:
        return self.cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self.cursor.fetchmany(self.cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self.cursor.fetchall()

    async def close(self) -> None:
        self.cursor.close()

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *sizes: Any) -> None:
        return None


class InlineConnection:
    """A ``sqlite3`` connection behind the asyncio connection protocol."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def cursor(self) -> InlineCursor:
        return InlineCursor(self.connection.cursor())

    async def commit(self) -> None:
        self.connection.commit()

    async def rollback(self) -> None:
        self.connection.rollback()

    async def close(self) -> None:
        self.connection.close()


class InlineAdaptedConnection(AsyncAdapt_dbapi_connection):
    """SQLAlchemy's adapter, with what its pysqlite dialect asks of a connection besides."""

    def create_function(self, *args: Any, **kwargs: Any) -> None:
        self.driver_connection.connection.create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> str | None:
        level: str | None = self.driver_connection.connection.isolation_level
        return level

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self.driver_connection.connection.isolation_level = value


class InlineDBAPI(AsyncAdapt_dbapi_module):
    """``sqlite3`` as the DBAPI module of an asyncio driver: its exceptions and
    constants, and connections adapted as above."""

    paramstyle = "qmark"

    def __init__(self) -> None:
        super().__init__(sqlite3, dbapi_module=sqlite3)
        for name in (
            "DatabaseError",
            "Error",
            "IntegrityError",
            "InterfaceError",
            "InternalError",
            "NotSupportedError",
            "OperationalError",
            "ProgrammingError",
            "Warning",
            "sqlite_version",
            "sqlite_version_info",
            "PARSE_COLNAMES",
            "PARSE_DECLTYPES",
            "Binary",
        ):
            setattr(self, name, getattr(sqlite3, name))

    def connect(self, *args: Any, **kwargs: Any) -> InlineAdaptedConnection:
        # The pool may be disposed from another thread (shutdown); the loop's
        # thread is the only one that runs statements.
        kwargs["check_same_thread"] = False
        inline = InlineConnection(sqlite3.connect(*args, **kwargs))
        # The protocol also declares open-ended attribute access, which the adapter does not use.
        return InlineAdaptedConnection(self, cast("AsyncIODBAPIConnection", inline))


class InlineSQLiteDialect(SQLiteDialect_pysqlite):
    """pysqlite's dialect, declared async, on :class:`InlineDBAPI`."""

    driver = "keel_inline"
    is_async = True
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> Any:
        return InlineDBAPI()

    def get_driver_connection(self, connection: Any) -> Any:
        return connection.driver_connection

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        # The asyncio queue pool for a file: waiting for a connection awaits, never blocks.
        in_memory = url.database in (None, "", ":memory:") or url.query.get("mode") == "memory"
        return pool.StaticPool if in_memory else pool.AsyncAdaptedQueuePool


registry.register("sqlite.keel_inline", __name__, "InlineSQLiteDialect")
