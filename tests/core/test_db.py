"""Database adapter tuning: SQLite pragmas and write locking, PostgreSQL timeouts."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import aiosqlite
import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from keel.config import Settings
from keel.core.accelerators.sqlite_inline import InlineConnection
from keel.core.db import Database
from keel.core.outbox import OutboxEvent, emit
from keel.core.sqlite import FALLBACK_CHECKPOINT_PAGES
from keel.main import create_app
from tests.fixtures.databases import database_settings


@pytest.fixture
async def database(database_url: str):  # type: ignore[no-untyped-def]
    db = Database(database_settings(database_url, db_statement_timeout_ms=1234))
    yield db
    await db.dispose()


@pytest.mark.sqlite
@pytest.mark.readiness("db.sqlite_tuning")
async def test_sqlite_pragmas(database: Database) -> None:
    async with database.engine.connect() as connection:
        assert (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
        assert (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
        assert (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 5000
        assert (await connection.exec_driver_sql("PRAGMA synchronous")).scalar() == 1  # NORMAL
        # A commit checkpoints only far past SQLite's 1,000 pages: the checkpointer's thread does it.
        assert (await connection.exec_driver_sql("PRAGMA wal_autocheckpoint")).scalar() == FALLBACK_CHECKPOINT_PAGES


def _size(path: Path) -> int:
    return path.stat().st_size


def _checkpoint_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "keel-sqlite-checkpoints"]


@pytest.mark.sqlite
async def test_the_wal_is_checkpointed_on_a_thread_and_not_by_the_commits_on_the_loop(tmp_path: Path) -> None:
    """Writes of 1,500 pages (past SQLite's default of 1,000, at which the
    commit itself would copy them into the file, on the event loop): the
    file stays as it was until the checkpointer's thread copies them."""
    path = tmp_path / "checkpoints.db"
    database = Database(database_settings(f"sqlite:///{path}"))
    try:
        async with database.session(write=True) as session, session.begin():
            await session.execute(text("CREATE TABLE pages (content BLOB)"))
        async with database.session(write=True) as session, session.begin():
            await session.execute(
                text("INSERT INTO pages VALUES (:content)"), [{"content": os.urandom(4000)} for _ in range(1500)]
            )
        assert _size(path) < 1_000_000  # the pages are in the WAL only
        assert _size(Path(f"{path}-wal")) > 6_000_000

        assert database.checkpointer is not None
        database.checkpointer.every_s = 0.05
        database.start_checkpoints()
        assert len(_checkpoint_threads()) == 1
        for _ in range(200):  # at most 10 s
            if _size(path) > 6_000_000:
                break
            await asyncio.sleep(0.05)
        assert _size(path) > 6_000_000
    finally:
        await database.dispose()
    assert _checkpoint_threads() == []


@pytest.mark.sqlite
async def test_a_serving_app_runs_the_checkpointer_while_it_lives(make_settings: Callable[..., Settings]) -> None:
    app = create_app(make_settings())
    async with app.router.lifespan_context(app):
        assert len(_checkpoint_threads()) == 1
    assert _checkpoint_threads() == []


@pytest.mark.sqlite
async def test_sqlite_reads_run_in_autocommit_and_writes_in_a_transaction(database: Database) -> None:
    """As on PostgreSQL: a read's statements are each their own snapshot, with
    no BEGIN or COMMIT around them; a write's transaction holds the lock."""

    async def in_transaction(write: bool, long_reads: bool = False) -> bool:
        async with database.session(write=write, long_reads=long_reads) as session:
            await session.execute(select(1))
            raw = await (await session.connection()).get_raw_connection()
            driver = raw.driver_connection
            if long_reads:  # off the loop, on aiosqlite's threads
                assert isinstance(driver, aiosqlite.Connection)
                return bool(driver.in_transaction)
            assert isinstance(driver, InlineConnection)  # on the loop
            return driver.connection.in_transaction

    assert await in_transaction(write=False) is False
    assert await in_transaction(write=False, long_reads=True) is False
    assert await in_transaction(write=True) is True


@pytest.mark.readiness("db.concurrent_writers")
async def test_concurrent_read_modify_write_transactions_lose_nothing(database: Database) -> None:
    """Each writer counts, then inserts: with write locking taken at BEGIN,
    no writer fails with "database is locked" and every insert lands."""
    event_type = f"test.concurrent.{uuid.uuid4().hex[:8]}"
    writers = 24

    async def write_once() -> None:
        async with database.session(write=True) as session:
            await session.scalar(select(func.count()).where(OutboxEvent.event_type == event_type))
            await emit(session, event_type, {})
            await session.commit()

    await asyncio.gather(*(write_once() for _ in range(writers)))
    async with database.session(write=False) as session:
        assert await session.scalar(select(func.count()).where(OutboxEvent.event_type == event_type)) == writers


@pytest.mark.sqlite
@pytest.mark.readiness("db.sqlite_foreign_writer")
async def test_writer_waits_out_another_process_lock_without_blocking_the_loop(
    database: Database, database_url: str
) -> None:
    """SQLite runs on the loop's thread: a write lock held elsewhere (another
    process) is waited out with asyncio sleeps, so reads keep being served."""
    other = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    event_type = f"test.waiting.{uuid.uuid4().hex[:8]}"

    async def write() -> None:
        async with database.session(write=True) as session:
            await emit(session, event_type, {})
            await session.commit()

    writer = asyncio.create_task(write())
    for _ in range(5):  # the loop keeps serving reads while the writer waits
        async with database.session(write=False) as session:
            assert await session.scalar(select(func.count()).where(OutboxEvent.event_type == event_type)) == 0
        await asyncio.sleep(0.02)
    assert not writer.done()
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(writer, timeout=5)
    async with database.session(write=False) as session:
        assert await session.scalar(select(func.count()).where(OutboxEvent.event_type == event_type)) == 1


@pytest.mark.sqlite
@pytest.mark.readiness("db.sqlite_foreign_writer")
async def test_writer_gives_up_after_busy_timeout_and_frees_the_queue(database_url: str) -> None:
    database = Database(database_settings(database_url, db_sqlite_busy_timeout_ms=200))
    other = sqlite3.connect(make_url(database_url).database or "", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="locked"):
            async with database.session(write=True) as session:
                await emit(session, "test.never", {})
    finally:
        other.execute("ROLLBACK")
        other.close()
    # The in-process write queue was released: the next writer gets through.
    async with database.session(write=True) as session:
        await emit(session, "test.after_timeout", {})
        await session.commit()
    await database.dispose()


@pytest.mark.postgres
@pytest.mark.readiness("db.statement_timeout")
async def test_postgres_statement_timeout_from_config(database: Database) -> None:
    async with database.engine.connect() as connection:
        assert (await connection.execute(text("SHOW statement_timeout"))).scalar() == "1234ms"
        assert (await connection.execute(text("SHOW application_name"))).scalar() == "keel"


@pytest.mark.postgres
async def test_postgres_long_reads_are_planned_per_execution_with_capped_parallelism(database_url: str) -> None:
    """Hot statements keep one generic plan; long reads are planned for their
    values and may add only the configured number of parallel workers."""
    database = Database(database_settings(database_url, db_long_read_parallel_workers=3))
    try:

        async def shown(long_reads: bool, name: str) -> str:
            async with database.session(write=False, long_reads=long_reads) as session:
                return str((await session.execute(text(f"SHOW {name}"))).scalar())

        assert await shown(False, "plan_cache_mode") == "force_generic_plan"
        assert await shown(True, "plan_cache_mode") == "force_custom_plan"
        assert await shown(True, "max_parallel_workers_per_gather") == "3"
        assert await shown(True, "statement_timeout") == "10s"
    finally:
        await database.dispose()


@pytest.mark.readiness("db.pool_stats")
async def test_pool_stats_report_checked_out_connections(database: Database) -> None:
    async with database.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        stats = database.pool_stats()
        assert stats is not None
        assert stats.checked_out == 1
        assert stats.size == 10


async def test_uuids_read_back_equal_to_what_was_written(database: Database) -> None:
    """The stored form goes back to an ordinary uuid.UUID on every backend."""
    written = uuid.UUID("01a2015a-0f6b-7637-801e-f11460cfb973")
    event_type = f"probe.{uuid.uuid4().hex[:8]}"
    async with database.session(write=True) as session:
        await emit(session, event_type, {}, org_id=written)
        await session.commit()
    async with database.session(write=False) as session:
        read = await session.scalar(select(OutboxEvent.org_id).where(OutboxEvent.event_type == event_type))
    assert isinstance(read, uuid.UUID)
    assert read == written
    assert hash(read) == hash(written)
    assert str(read) == "01a2015a-0f6b-7637-801e-f11460cfb973"
    assert read.version == 7
    assert {read: "found"}[written] == "found"


async def test_datetimes_read_back_as_the_same_utc_instant(database: Database) -> None:
    """Aware UTC out, whatever zone went in, with microseconds kept, on every backend."""
    written = datetime(2026, 3, 1, 14, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2)))
    event_type = f"probe.{uuid.uuid4().hex[:8]}"
    async with database.session(write=True) as session:
        await emit(session, event_type, {}, org_id=uuid.uuid4())
        await session.execute(
            update(OutboxEvent).where(OutboxEvent.event_type == event_type).values(created_at=written)
        )
        await session.commit()
    async with database.session(write=False) as session:
        read = await session.scalar(select(OutboxEvent.created_at).where(OutboxEvent.event_type == event_type))
    assert read == written
    assert read is not None
    assert read.tzinfo is UTC
    assert read.isoformat() == "2026-03-01T12:30:05.123456+00:00"


@pytest.mark.postgres
async def test_warming_up_opens_the_pools_connections_and_hands_them_back(database_url: str) -> None:
    database = Database(database_settings(database_url, db_pool_size=3, db_max_overflow=0))
    try:
        assert await database.warm_up() == 3
        stats = database.pool_stats()
        assert stats is not None
        assert (stats.checked_in, stats.checked_out) == (3, 0)
        assert await database.warm_up() == 0  # already open
    finally:
        await database.dispose()


@pytest.mark.sqlite
async def test_sqlite_is_not_warmed_up_and_reuses_its_most_recent_connection(database: Database) -> None:
    """Each SQLite connection has its own page cache: few, and the warm one first."""
    assert await database.warm_up() == 0
    async with database.engine.connect() as first:
        first_driver = (await first.get_raw_connection()).driver_connection
        async with database.engine.connect() as second:
            second_driver = (await second.get_raw_connection()).driver_connection
    async with database.engine.connect() as again:
        assert (await again.get_raw_connection()).driver_connection is first_driver
    assert second_driver is not first_driver


async def test_warming_up_a_database_that_is_down_gives_up_quietly() -> None:
    database = Database(database_settings("postgresql+asyncpg://postgres@127.0.0.1:1/none", db_pool_size=2))
    try:
        assert await database.warm_up(within_s=2) == 0
    finally:
        await database.dispose()
