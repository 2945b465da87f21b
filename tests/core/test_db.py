"""Database adapter tuning: SQLite pragmas and write locking, PostgreSQL timeouts."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select, text

from keel.core.db import Database
from keel.core.outbox import OutboxEvent, emit
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


@pytest.mark.postgres
@pytest.mark.readiness("db.statement_timeout")
async def test_postgres_statement_timeout_from_config(database: Database) -> None:
    async with database.engine.connect() as connection:
        assert (await connection.execute(text("SHOW statement_timeout"))).scalar() == "1234ms"
        assert (await connection.execute(text("SHOW application_name"))).scalar() == "keel"


@pytest.mark.readiness("db.pool_stats")
async def test_pool_stats_report_checked_out_connections(database: Database) -> None:
    async with database.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        stats = database.pool_stats()
        assert stats is not None
        assert stats.checked_out == 1
        assert stats.size == 10
