"""Prepared statements: the same rows as SQLAlchemy reads and writes, from
the driver directly (asyncpg, sqlite3 inline), through SQLAlchemy where it
must run them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from keel.core.db import Database
from keel.core.outbox import OutboxEvent, emit
from keel.core.prepared import PreparedInsert, PreparedRead, _one_statement, insert_rows
from tests.fixtures.databases import database_settings

_COLUMNS = (
    OutboxEvent.id,
    OutboxEvent.org_id,
    OutboxEvent.event_type,
    OutboxEvent.payload,
    OutboxEvent.created_at,
    OutboxEvent.processed_at,
    OutboxEvent.attempts,
)
_BY_TYPE = PreparedRead(select(*_COLUMNS).where(OutboxEvent.event_type == bindparam("event_type")))
_SINCE = PreparedRead(
    select(*_COLUMNS)
    .where(OutboxEvent.event_type == bindparam("event_type"), OutboxEvent.created_at >= bindparam("since"))
    .order_by(OutboxEvent.id)
)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_settings(database_url))
    yield db
    await db.dispose()


@pytest.fixture
def sqlalchemy_executions(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """The statements that went through SQLAlchemy's execution path."""
    executed: list[object] = []
    execute = AsyncConnection.execute

    async def counting(self: AsyncConnection, statement: Any, *args: Any, **kwargs: Any) -> Any:
        executed.append(statement)
        return await execute(self, statement, *args, **kwargs)

    monkeypatch.setattr(AsyncConnection, "execute", counting)
    return executed


async def _written_events(database: Database, count: int) -> str:
    event_type = f"probe.{uuid.uuid4().hex[:8]}"
    async with database.session(write=True) as session:
        for number in range(count):
            await emit(session, event_type, {"n": number, "tags": ["a", "ü"]}, org_id=uuid.uuid4())
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.event_type == event_type)
            .values(created_at=datetime(2026, 3, 1, 14, 30, 5, 123456, tzinfo=timezone(timedelta(hours=2))))
        )
        await session.commit()
    return event_type


async def test_rows_equal_sqlalchemys_in_value_and_type(database: Database) -> None:
    event_type = await _written_events(database, 3)
    params = {"event_type": event_type, "since": datetime(2026, 3, 1, 12, 0, tzinfo=UTC)}
    async with database.session(write=False) as session:
        prepared = await _SINCE.all(session, params)
        expected = (await session.execute(_SINCE.statement, params)).all()
    assert len(prepared) == 3
    assert [tuple(row) for row in prepared] == [tuple(row) for row in expected]
    for row, expected_row in zip(prepared, expected, strict=True):
        assert [type(value) for value in row] == [type(value) for value in expected_row]
        assert row[3]["tags"] == ["a", "ü"]
        assert row[4].tzinfo is UTC
        assert row[4].isoformat() == "2026-03-01T12:30:05.123456+00:00"
        assert row[5] is None


async def test_bound_datetimes_are_processed_like_sqlalchemys(database: Database) -> None:
    """A datetime parameter in another zone means the same instant."""
    event_type = await _written_events(database, 1)
    just_before = datetime(2026, 3, 1, 7, 30, 5, tzinfo=timezone(timedelta(hours=-5)))  # 12:30:05 UTC
    just_after = just_before + timedelta(seconds=1)
    async with database.session(write=False) as session:
        assert len(await _SINCE.all(session, {"event_type": event_type, "since": just_before})) == 1
        assert await _SINCE.all(session, {"event_type": event_type, "since": just_after}) == []
        assert await _BY_TYPE.first(session, {"event_type": "probe.none"}) is None


async def test_reads_skip_sqlalchemys_execution(database: Database, sqlalchemy_executions: list[object]) -> None:
    """asyncpg on PostgreSQL's autocommit reads, sqlite3 inline on SQLite."""
    event_type = await _written_events(database, 2)
    sqlalchemy_executions.clear()
    async with database.session(write=False) as session:
        rows = await _BY_TYPE.all(session, {"event_type": event_type})
    assert len(rows) == 2
    assert sqlalchemy_executions == []


async def test_a_read_session_borrows_a_pooled_connection_per_statement(
    database: Database, sqlalchemy_executions: list[object]
) -> None:
    """In autocommit any connection gives the same snapshot: the statement
    runs on one borrowed from the pool and handed straight back, and the
    session itself never takes one."""
    event_type = await _written_events(database, 2)
    pool = database.engine.sync_engine.pool
    sqlalchemy_executions.clear()
    async with database.session(write=False) as session:
        assert len(await _BY_TYPE.all(session, {"event_type": event_type})) == 2
        assert not session.in_transaction()
        assert not session.built  # type: ignore[attr-defined]  # not even built: nothing used it
        assert pool.checkedout() == 0  # type: ignore[attr-defined]
    assert sqlalchemy_executions == []


async def test_a_read_session_holding_its_connection_reads_on_it(database_url: str) -> None:
    """With the session's connection taken (an ORM read before), a prepared read
    runs there rather than waiting for a second one: one connection in the
    pool is enough."""
    one = Database(database_settings(database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout_s=2))
    try:
        event_type = await _written_events(one, 1)
        async with one.session(write=False) as session:
            await session.execute(select(1))
            assert len(await _BY_TYPE.all(session, {"event_type": event_type})) == 1
        async with one.session(write=False) as session:  # and the borrowed one came back
            assert len(await _BY_TYPE.all(session, {"event_type": event_type})) == 1
            assert len(await _BY_TYPE.all(session, {"event_type": event_type})) == 1
    finally:
        await one.dispose()


@pytest.mark.postgres
async def test_a_postgres_read_that_opens_a_transaction_begins_it_on_the_driver(
    database: Database, sqlalchemy_executions: list[object]
) -> None:
    """A write's first statement (its caller's locked row) begins the session's
    transaction through the adapter's own: later statements, the commit and
    the rollback are the same transaction's."""
    event_type = await _written_events(database, 1)
    sqlalchemy_executions.clear()
    async with database.session(write=True) as session:
        assert len(await _BY_TYPE.all(session, {"event_type": event_type})) == 1
        raw = await (await session.connection()).get_raw_connection()
        assert raw.driver_connection.is_in_transaction()  # type: ignore[union-attr]
        await emit(session, event_type, {}, org_id=uuid.uuid4())  # on the driver too: the transaction has begun
        await session.rollback()
    assert sqlalchemy_executions == []
    async with database.session(write=False) as session:
        assert len(await _BY_TYPE.all(session, {"event_type": event_type})) == 1


@pytest.mark.postgres
async def test_a_locked_read_on_the_driver_holds_its_lock_until_commit(database: Database) -> None:
    event_id = await _stored_event(database, f"probe.{uuid.uuid4().hex[:8]}")
    locked = PreparedRead(select(OutboxEvent.id).where(OutboxEvent.id == bindparam("id")).with_for_update())
    nowait = select(OutboxEvent.id).where(OutboxEvent.id == event_id).with_for_update(nowait=True)
    async with database.session(write=True) as holder:
        assert [tuple(row) for row in await locked.all(holder, {"id": event_id})] == [(event_id,)]
        async with database.session(write=True) as other:
            with pytest.raises(DBAPIError, match="could not obtain lock"):
                await other.execute(nowait)
        await holder.commit()
    async with database.session(write=True) as other:
        assert (await other.execute(nowait)).scalar() == event_id


async def test_a_failing_read_in_a_transaction_raises_and_the_session_goes_on(database: Database) -> None:
    """On PostgreSQL the failed statement aborted the transaction: the driver's
    error stands, and after the rollback the session works again."""
    nowhere = Table("no_such_table", MetaData(), Column("id", Integer))
    broken = PreparedRead(select(nowhere.c.id))
    event_type = await _written_events(database, 1)
    async with database.session(write=True) as session:
        with pytest.raises((DBAPIError, asyncpg.UndefinedTableError)):
            await broken.all(session, {})
        await session.rollback()
        assert len(await _BY_TYPE.all(session, {"event_type": event_type})) == 1


async def test_reads_in_a_transaction_see_its_own_uncommitted_writes(database: Database) -> None:
    """A write session's transaction is begun by SQLAlchemy: the read runs in it."""
    event_type = f"probe.{uuid.uuid4().hex[:8]}"
    async with database.session(write=True) as session:
        await emit(session, event_type, {}, org_id=uuid.uuid4())
        assert len(await _BY_TYPE.all(session, {"event_type": event_type})) == 1
        await session.rollback()
    async with database.session(write=False) as session:
        assert await _BY_TYPE.all(session, {"event_type": event_type}) == []


async def test_expanding_in_lists_run_through_sqlalchemy(database: Database) -> None:
    event_type = await _written_events(database, 2)
    listed = PreparedRead(select(*_COLUMNS).where(OutboxEvent.event_type.in_(bindparam("types", expanding=True))))
    async with database.session(write=False) as session:
        assert len(await listed.all(session, {"types": [event_type, "probe.other"]})) == 2


async def test_a_failing_read_raises_sqlalchemys_error_and_the_session_goes_on(database: Database) -> None:
    nowhere = Table("no_such_table", MetaData(), Column("id", Integer))
    broken = PreparedRead(select(nowhere.c.id))
    event_type = await _written_events(database, 1)
    async with database.session(write=False) as session:
        with pytest.raises(DBAPIError):
            await broken.all(session, {})
    assert database.engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    async with database.session(write=False) as session:
        assert len(await _BY_TYPE.all(session, {"event_type": event_type})) == 1


# -- inserts ------------------------------------------------------------------

_EVENT_INSERT = PreparedInsert(OutboxEvent)


async def _begin(session: AsyncSession) -> None:
    """What every write does first (its caller's locked row): a statement that
    begins the transaction."""
    await session.execute(select(1))


async def _stored_event(database: Database, event_type: str) -> uuid.UUID:
    async with database.session(write=True) as session:
        await _begin(session)
        row = await _EVENT_INSERT.insert(session, {"event_type": event_type, "payload": {}})
        await session.commit()
    stored: uuid.UUID = row["id"]
    return stored


async def test_an_insert_writes_the_row_it_returns_defaults_included(database: Database) -> None:
    org_id = uuid.uuid4()
    async with database.session(write=True) as session:
        await _begin(session)
        row = await _EVENT_INSERT.insert(
            session, {"org_id": org_id, "event_type": "probe.insert", "payload": {"tags": ["a", "ü"], "n": 1}}
        )
        await session.commit()
    assert row["attempts"] == 0
    assert "processed_at" not in row  # no default: left to the database
    assert isinstance(row["id"], uuid.UUID)
    assert row["created_at"].tzinfo is UTC
    async with database.session(write=False) as session:
        stored = (await session.scalars(select(OutboxEvent).where(OutboxEvent.id == row["id"]))).one()
    assert {column: getattr(stored, column) for column in row} == row
    assert stored.processed_at is None


async def test_inserts_in_a_begun_transaction_skip_sqlalchemys_execution(
    database: Database, sqlalchemy_executions: list[object]
) -> None:
    async with database.session(write=True) as session:
        await _begin(session)
        sqlalchemy_executions.clear()
        await emit(session, "probe.insert", {}, org_id=uuid.uuid4())
        await session.commit()
    assert sqlalchemy_executions == []


@pytest.mark.postgres
async def test_a_postgres_insert_that_would_begin_the_transaction_runs_through_sqlalchemy(
    database: Database, sqlalchemy_executions: list[object]
) -> None:
    event_type = f"probe.{uuid.uuid4().hex[:8]}"
    async with database.session(write=True) as session:
        await emit(session, event_type, {}, org_id=uuid.uuid4())
        assert [getattr(statement, "table", None) for statement in sqlalchemy_executions] == [OutboxEvent.__table__]
        await session.rollback()
    async with database.session(write=False) as session:
        assert await _BY_TYPE.all(session, {"event_type": event_type}) == []


async def test_a_duplicate_raises_sqlalchemys_integrity_error_and_the_transaction_rolls_back(
    database: Database,
) -> None:
    event_type = f"probe.{uuid.uuid4().hex[:8]}"
    taken = await _stored_event(database, event_type)
    async with database.session(write=True) as session:
        await _begin(session)
        await _EVENT_INSERT.insert(session, {"event_type": event_type, "payload": {"first": True}})
        with pytest.raises(IntegrityError):
            await _EVENT_INSERT.insert(session, {"id": taken, "event_type": event_type, "payload": {}})
        await session.rollback()
    async with database.session(write=False) as session:
        assert [row[0] for row in await _BY_TYPE.all(session, {"event_type": event_type})] == [taken]


async def test_rows_written_together_land_whole_each_in_its_own_columns(
    database: Database, sqlalchemy_executions: list[object]
) -> None:
    """On PostgreSQL one statement (the first rows in a WITH), on SQLite one after another."""
    event_type = f"probe.{uuid.uuid4().hex[:8]}"
    first = _EVENT_INSERT.row({"org_id": uuid.uuid4(), "event_type": event_type, "payload": {"n": 1}, "attempts": 7})
    second = _EVENT_INSERT.row({"org_id": None, "event_type": event_type, "payload": {"n": 2}})
    async with database.session(write=True) as session:
        await _begin(session)
        sqlalchemy_executions.clear()
        await insert_rows(session, (_EVENT_INSERT, first), (_EVENT_INSERT, second))
        await session.commit()
    assert sqlalchemy_executions == []
    async with database.session(write=False) as session:
        stored = {
            row.id: row
            for row in await session.scalars(select(OutboxEvent).where(OutboxEvent.event_type == event_type))
        }
    for written in (first, second):
        assert {column: getattr(stored[written["id"]], column) for column in written} == written


async def test_a_duplicate_among_rows_written_together_writes_none_of_them(database: Database) -> None:
    event_type = f"probe.{uuid.uuid4().hex[:8]}"
    taken = await _stored_event(database, event_type)
    fresh = _EVENT_INSERT.row({"event_type": event_type, "payload": {"fresh": True}})
    again = _EVENT_INSERT.row({"id": taken, "event_type": event_type, "payload": {}})
    async with database.session(write=True) as session:
        await _begin(session)
        with pytest.raises(IntegrityError):
            await insert_rows(session, (_EVENT_INSERT, fresh), (_EVENT_INSERT, again))
        await session.rollback()
    async with database.session(write=False) as session:
        assert [row[0] for row in await _BY_TYPE.all(session, {"event_type": event_type})] == [taken]


def test_placeholders_of_statements_written_together_are_numbered_on() -> None:
    one = "INSERT INTO a (x, y) VALUES ($1, $2::JSON)"
    other = (
        "INSERT INTO b ("
        + ", ".join(f"c{n}" for n in range(1, 12))
        + ") VALUES ("
        + ", ".join(f"${n}" for n in range(1, 12))
        + ")"
    )
    combined = _one_statement((one, other))
    assert combined.startswith("WITH w1 AS (INSERT INTO a (x, y) VALUES ($1, $2::JSON)) INSERT INTO b (")
    assert combined.endswith("VALUES (" + ", ".join(f"${n}" for n in range(3, 14)) + ")")
