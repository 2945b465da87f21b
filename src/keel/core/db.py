"""The async database adapter: SQLite (WAL) by default, PostgreSQL scaled out.

Domain code sees only ``AsyncSession``s; which engine sits behind them, and
how each is tuned, is decided here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Executable, Select, text
from sqlalchemy.engine import URL, Result, Row, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import greenlet_spawn

from keel.config import DatabaseSettings
from keel.core.accelerators.driver_reads import DriverReads
from keel.core.accelerators.sqlite_inline import DRIVER_NAME as INLINE_DRIVER
from keel.core.metrics import PoolStats
from keel.core.sqlite import READ_OPTION, WRITE_OPTION, WalCheckpointer, configure_sqlite

# Session.info key: the session's reads may run on the driver (see rows_by_name).
_DRIVER_READS = "keel.driver_reads"
# Long reads at once (full-text searches, aggregates): on SQLite each holds
# an aiosqlite thread while it runs.
_LONG_READ_CONNECTIONS = 4
# How often a serving process checkpoints a SQLite file's WAL (see keel.core.sqlite).
_CHECKPOINT_EVERY_S = 1.0


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


# JSON columns through orjson: several times faster than the json module both
# ways. A statement's parameters stay out of its errors' text, and so out of
# every log line that quotes one: they hold users' data (emails, hashes, payloads).
_ENGINE_OPTIONS: dict[str, Any] = {
    "json_serializer": _json_dumps,
    "json_deserializer": orjson.loads,
    "hide_parameters": True,
}


def _sqlite_engine(
    url: URL, settings: DatabaseSettings, *, inline: bool, pool_size: int, read_only: bool = False
) -> AsyncEngine:
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        # Whatever driver the URL names: the inline accelerator, or aiosqlite.
        url.set(drivername=INLINE_DRIVER if inline else "sqlite+aiosqlite"),
        echo=settings.db_echo,
        **_ENGINE_OPTIONS,
        pool_size=pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        # Each SQLite connection has its own page cache: the most recently
        # returned connection (warm cache) is handed out next, rather than
        # reads cycling through every connection the pool ever opened.
        pool_use_lifo=True,
    )
    configure_sqlite(engine, settings.db_sqlite_busy_timeout_ms, waits_on_loop=inline, read_only=read_only)
    return engine


def _postgres_engine(
    url: URL, settings: DatabaseSettings, *, pool_size: int, extra_settings: Mapping[str, str]
) -> AsyncEngine:
    # UTC and ISO style: any timestamp PostgreSQL prints as text is in
    # keel's zone and an ISO 8601 spelling.
    server_settings = {"application_name": "keel", "TimeZone": "UTC", "DateStyle": "ISO", **extra_settings}
    if settings.db_statement_timeout_ms:
        server_settings["statement_timeout"] = str(settings.db_statement_timeout_ms)
    return create_async_engine(
        url,
        echo=settings.db_echo,
        pool_size=pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout_s,
        pool_recycle=1800,
        **_ENGINE_OPTIONS,
        connect_args={"server_settings": server_settings},
    )


async def execute_core(
    session: AsyncSession,
    statement: Executable,
    params: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
) -> Result[Any]:
    """Run a Core statement on the session's connection, past the ORM's result
    machinery (plain rows, no ORM objects): for reads and writes that need no
    unit of work; the session's transaction is the same. A list of
    parameter sets runs the statement for each (an INSERT's rows go in one
    statement, RETURNING theirs)."""
    connection = await session.connection()
    return await connection.execute(statement, params)


async def rows_by_name(
    session: AsyncSession, statement: Executable, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The statement's rows as dicts by column name (the names read once per
    result, not once per row as a ``RowMapping`` copy does). A read request's
    statement built once runs on the driver on PostgreSQL
    (keel.core.accelerators.driver_reads)."""
    driver_reads: DriverReads | None = session.info.get(_DRIVER_READS)
    if driver_reads is not None and isinstance(statement, Select):
        compiled = driver_reads.compiled(statement)
        if compiled is not None:
            return await driver_reads.rows(await session.connection(), compiled, params or {})
    result = await execute_core(session, statement, params)
    names = tuple(result.keys())
    return [dict(zip(names, row, strict=True)) for row in result]


async def first_row(
    session: AsyncSession, statement: Executable, params: Mapping[str, Any] | None = None
) -> Row[Any] | None:
    """The statement's first row (by name or position), or None."""
    return (await execute_core(session, statement, params)).first()


class Database:
    """Engine, session factories and health probes for one process."""

    def __init__(self, settings: DatabaseSettings) -> None:
        url = make_url(settings.database_url.get_secret_value())
        self.is_sqlite = url.get_backend_name() == "sqlite"
        self.display_url = url.render_as_string(hide_password=True)
        self.checkpointer: WalCheckpointer | None = None
        if self.is_sqlite:
            if url.database and url.database != ":memory:":
                self.checkpointer = WalCheckpointer(Path(url.database), every_s=_CHECKPOINT_EVERY_S)
            # Hot statements inline on the loop (keel.core.accelerators.sqlite_inline);
            # statements that may run long (ranking every match of a common
            # word, aggregates) on aiosqlite's threads, so they never hold it.
            self.engine = _sqlite_engine(url, settings, inline=True, pool_size=settings.db_pool_size)
            self.long_read_engine = _sqlite_engine(
                url, settings, inline=False, pool_size=_LONG_READ_CONNECTIONS, read_only=True
            )
        else:
            # Generic plans (by default): every hot statement is an org-scoped
            # lookup or keyset page with an index for each of its filters, so
            # one plan serves every value; left to choose, PostgreSQL weighs
            # that plan for an average org against one made for the org at
            # hand, judges a large org's page cheaper planned afresh, and plans
            # it on every request (for a page of tasks that cost PostgreSQL
            # more than running it).
            self.engine = _postgres_engine(
                url,
                settings,
                pool_size=settings.db_pool_size,
                extra_settings={"plan_cache_mode": settings.db_plan_cache_mode},
            )
            # Full-text reads and aggregates are planned for their values: how
            # many rows a word matches decides between walking the list's
            # ordered index (a common word: the first page is the first
            # matches) and reading the matches from the full-text index (a
            # rare one), and no single plan is fit for both. Their parallel
            # workers are capped (none by default), so a dashboard cannot take
            # every core from the requests beside it.
            self.long_read_engine = _postgres_engine(
                url,
                settings,
                pool_size=_LONG_READ_CONNECTIONS,
                extra_settings={
                    "plan_cache_mode": "force_custom_plan",
                    "max_parallel_workers_per_gather": str(settings.db_long_read_parallel_workers),
                },
            )
        # A session class of this database's own, so session events (see
        # keel.identity.access_cache) can be listened to per database.
        self.session_class: type[Session] = type("KeelSession", (Session,), {})
        session_options: dict[str, Any] = {
            "expire_on_commit": False,
            "autoflush": False,
            "sync_session_class": self.session_class,
        }
        # Reads run in autocommit: under PostgreSQL's READ COMMITTED every
        # statement takes its own snapshot anyway, so a transaction around a
        # read-only request bought nothing but a BEGIN and a COMMIT round trip;
        # SQLite's reads do the same (see keel.core.sqlite).
        read_options: dict[str, Any] = {READ_OPTION: True} if self.is_sqlite else {"isolation_level": "AUTOCOMMIT"}
        # Reads in autocommit on PostgreSQL may run on the driver: there is
        # no transaction for SQLAlchemy to begin around them. (Not with SQL
        # echoed, which is SQLAlchemy's to log.)
        driver_reads = None if self.is_sqlite or settings.db_echo else DriverReads(self.engine.dialect)
        self.read_sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine.execution_options(**read_options), info={_DRIVER_READS: driver_reads}, **session_options
        )
        self.long_read_sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            # SQLite's long-read engine only reads: every statement in autocommit already.
            self.long_read_engine if self.is_sqlite else self.long_read_engine.execution_options(**read_options),
            **session_options,
        )
        self.write_sessions: async_sessionmaker[AsyncSession] = async_sessionmaker(
            self.engine.execution_options(**{WRITE_OPTION: True}), **session_options
        )

    def session(self, *, write: bool, long_reads: bool = False) -> AsyncSession:
        """A new session; ``write=True`` takes SQLite's write lock at BEGIN;
        ``long_reads`` (reads only) for statements that may run long, which on
        SQLite run off the event loop and on PostgreSQL are planned for their
        values."""
        if write:
            return self.write_sessions()
        return self.long_read_sessions() if long_reads else self.read_sessions()

    async def warm_up(self, *, within_s: float = 5.0) -> int:
        """Open the pool's connections before the first requests need them;
        how many are open. With a cold pool the first requests under load
        each wait for a connection's setup (TLS negotiation and
        authentication on PostgreSQL). Best effort: a database that is down or slow is the
        readiness probe's to report, so this gives up after ``within_s``.
        Not for SQLite: opening it is a file open, and each connection held
        open keeps a page cache of its own."""
        pool = self.engine.sync_engine.pool
        if self.is_sqlite or not isinstance(pool, QueuePool):
            return 0
        opened: list[Any] = []

        async def open_one() -> None:
            opened.append(await greenlet_spawn(pool.connect))

        tasks = [asyncio.create_task(open_one()) for _ in range(pool.size() - pool.checkedin())]
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=within_s)
            for task in late:
                task.cancel()
            # Failures are the readiness probe's to report: gathered, not raised.
            await asyncio.gather(*tasks, return_exceptions=True)
        for connection in opened:
            await greenlet_spawn(connection.close)
        return len(opened)

    async def ping(self) -> None:
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    def pool_stats(self) -> PoolStats | None:
        pool = self.engine.sync_engine.pool
        if not isinstance(pool, QueuePool):
            return None
        return PoolStats(
            size=pool.size(),
            checked_out=pool.checkedout(),
            overflow=max(pool.overflow(), 0),
            checked_in=pool.checkedin(),
        )

    def start_checkpoints(self) -> None:
        """A serving process's: checkpoint a SQLite file's WAL on a thread, off the event loop."""
        if self.checkpointer is not None:
            self.checkpointer.start()

    async def dispose(self) -> None:
        if self.checkpointer is not None:
            await asyncio.to_thread(self.checkpointer.stop)
        await self.engine.dispose()
        if self.long_read_engine is not self.engine:
            await self.long_read_engine.dispose()
