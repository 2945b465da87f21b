"""Hot reads on PostgreSQL fetched by asyncpg directly
(keel.core.accelerators.driver_reads): the rows SQLAlchemy would return,
SQLAlchemy's errors, a lost connection found as SQLAlchemy finds it, and
never a read outside a write's transaction."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import Float, bindparam, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, StatementError

from keel.config import DatabaseSettings
from keel.core.db import Database, rows_by_name
from keel.core.models import UTCDateTime
from tests.fixtures.accounts import API, add_member, create_org, register
from tests.fixtures.databases import database_settings
from tests.fixtures.relay import relay_to
from tests.fixtures.statements import executed_statements

pytestmark = pytest.mark.postgres


async def test_reads_on_the_driver_answer_what_sqlalchemy_answers(app: FastAPI, client: httpx.AsyncClient) -> None:
    owner, member = await register(client), await register(client, name="Mia")
    org_id = await create_org(client, owner)
    await add_member(client, org_id, owner, member, "member")
    tasks, h = f"{API}/orgs/{org_id}/tasks", owner.headers
    project = (await client.post(f"{API}/orgs/{org_id}/projects", json={"name": "Launch"}, headers=h)).json()
    full = {
        "title": "Everything set",
        "description": "d",
        "project_id": project["id"],
        "assignee_id": member.id,
        "labels": ["a", "b"],
        "due_at": "2030-01-01T10:00:00+02:00",
        "priority": 3,
    }
    created = [(await client.post(tasks, json=body, headers=h)).json() for body in (full, {"title": "Bare"})]
    created += [(await client.post(tasks, json={"title": f"t{n}"}, headers=h)).json() for n in range(3)]
    first_page: dict[str, str | int | list[str]] = {"limit": 2, "status": ["todo", "done"], "sort": "-created_at"}
    page = (await client.get(tasks, params=first_page, headers=h)).json()
    reads = [f"{tasks}/{task['id']}" for task in created[:2]]
    lists = [(tasks, first_page), (tasks, {**first_page, "cursor": page["next_cursor"]})]

    async def answers() -> list[Any]:
        got = [await client.get(url, headers=h) for url in reads]
        got += [await client.get(url, params=params, headers=h) for url, params in lists]
        assert all(response.status_code == 200 for response in got)
        return [(response.json(), response.headers.get("etag")) for response in got]

    through_sqlalchemy = await answers()  # each statement's first read
    await answers()
    async with executed_statements(app, driver_reads=False) as seen, executed_statements(app) as sent:
        on_the_driver = await answers()
    assert on_the_driver == through_sqlalchemy
    assert not [statement for statement in seen if "FROM tasks" in statement]
    assert len([statement for statement in sent if "FROM tasks" in statement]) == len(reads) + len(lists)
    assert on_the_driver[0][0]["project"] == {"id": project["id"], "name": "Launch"}
    assert on_the_driver[0][0]["labels"] == ["a", "b"]
    assert on_the_driver[0][0]["due_at"] == "2030-01-01T08:00:00Z"


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_settings(database_url, db_statement_timeout_ms=200))
    yield db
    await db.dispose()


async def test_a_failed_read_raises_sqlalchemys_error_and_keeps_its_connection(database: Database) -> None:
    sleep = select(func.pg_sleep(bindparam("seconds", type_=Float)).label("slept"))
    async with database.session(write=False) as session:
        assert await rows_by_name(session, sleep, {"seconds": 0}) == [{"slept": None}]  # through SQLAlchemy
        with pytest.raises(DBAPIError) as cancelled:  # on the driver, past the statement timeout
            await rows_by_name(session, sleep, {"seconds": 2})
        assert getattr(cancelled.value.orig, "sqlstate", None) == "57014"
        assert not cancelled.value.connection_invalidated
        assert await rows_by_name(session, sleep, {"seconds": 0}) == [{"slept": None}]


async def test_a_parameter_on_the_driver_goes_through_its_types_processor(database: Database) -> None:
    """keel's UTC type refuses a naive datetime and sends an aware one in UTC:
    on the driver as through SQLAlchemy."""
    echo = select(bindparam("at", type_=UTCDateTime()).label("at"))
    aware = datetime(2030, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    async with database.session(write=False) as session:
        for _ in range(2):  # through SQLAlchemy, then on the driver
            with pytest.raises((StatementError, ValueError), match="naive datetimes are ambiguous"):
                await rows_by_name(session, echo, {"at": aware.replace(tzinfo=None)})
        for _ in range(2):
            assert await rows_by_name(session, echo, {"at": aware}) == [{"at": datetime(2030, 1, 1, 10, 0, tzinfo=UTC)}]


async def test_after_a_restart_the_first_failed_read_replaces_every_pooled_connection(database_url: str) -> None:
    """A lost connection is SQLAlchemy's to find: it drops every pooled
    connection older than the failure, so the reads after it run on new ones."""
    url = make_url(database_url)
    async with relay_to(url.host or "127.0.0.1", url.port or 5432) as relay:
        through_relay = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
        database = Database(DatabaseSettings(database_url=SecretStr(through_relay), db_pool_size=4))
        statement = select(func.current_database().label("name"))

        async def read() -> list[dict[str, Any]]:
            async with database.session(write=False) as session:
                return await rows_by_name(session, statement)

        try:
            assert await database.warm_up() == 4
            await read()
            expected = await read()  # compiled for the driver now
            relay.cut()  # the database restarts: every pooled connection is reset...
            relay.restore()  # ...and new ones are accepted at once
            with pytest.raises(DBAPIError) as lost:
                await read()
            assert lost.value.connection_invalidated  # the request boundary reads again on a new one
            assert await asyncio.gather(*(read() for _ in range(4))) == [expected] * 4
        finally:
            await database.dispose()


async def test_reads_in_a_write_transaction_stay_in_it(database: Database) -> None:
    """now() is the transaction's start: every read of a write sees the same one."""
    now = select(func.now().label("at"))
    for _ in range(2):  # read before: where the driver may read it, it would now
        async with database.session(write=True) as session:
            await rows_by_name(session, now)
    async with database.session(write=True) as session:
        first = await rows_by_name(session, now)
        await asyncio.sleep(0.01)
        second = await rows_by_name(session, now)
        third = (await session.execute(now)).scalar()
    assert first[0]["at"] == second[0]["at"] == third


async def test_a_read_cancelled_mid_fetch_leaves_its_connection_usable(database_url: str) -> None:
    """A request's deadline cancels a read on the driver: the one pooled
    connection goes back to the pool and serves the next read."""
    database = Database(database_settings(database_url, db_pool_size=1, db_max_overflow=0))
    sleep = select(func.pg_sleep(bindparam("seconds", type_=Float)).label("slept"))
    try:
        for _ in range(2):  # from the second read on, on the driver
            async with database.session(write=False) as session:
                assert await rows_by_name(session, sleep, {"seconds": 0}) == [{"slept": None}]
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1), database.session(write=False) as session:
                await rows_by_name(session, sleep, {"seconds": 5})
        async with asyncio.timeout(2), database.session(write=False) as session:
            assert await rows_by_name(session, sleep, {"seconds": 0}) == [{"slept": None}]
    finally:
        await database.dispose()
