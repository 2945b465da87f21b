"""last_active_at: updated by API calls, at most one write per user per interval."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import select

from keel.config import AuthSettings
from keel.core.clock import now
from keel.core.db import Database
from keel.identity.last_seen import LastSeenStamps
from keel.identity.users.models import User
from keel.main import create_app
from tests.fixtures.accounts import API, last_seen_written, register
from tests.fixtures.databases import database_settings
from tests.fixtures.locks import user_row_locked


async def last_active(client: httpx.AsyncClient, headers: dict[str, str]) -> str | None:
    me = (await client.get(f"{API}/me", headers=headers)).json()
    return me["last_active_at"]  # type: ignore[no-any-return]


@pytest.mark.readiness("identity.activity_throttled")
async def test_activity_is_stamped_once_per_interval(client: httpx.AsyncClient, app: FastAPI) -> None:
    account = await register(client)
    first = await last_active(client, account.headers)
    # The stamp is due at the first authenticated call (registering reads
    # /me), and a read's stamp is written after its response: the reads
    # after that one may or may not see it, those after it is written do.
    await last_seen_written(app)
    stamped = await last_active(client, account.headers)
    assert stamped is not None
    assert first in (None, stamped)
    await client.post(f"{API}/orgs", json={"name": "busy"}, headers=account.headers)
    assert await last_active(client, account.headers) == stamped


async def stored_last_active(database_url: str, user_id: str) -> Any:
    database = Database(database_settings(database_url))
    try:
        async with database.session(write=False) as session:
            return await session.scalar(select(User.last_active_at).where(User.id == uuid.UUID(user_id)))
    finally:
        await database.dispose()


def stamping_every_second(make_settings: Callable[..., Any]) -> Any:
    auth = AuthSettings(argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1, activity_write_interval_s=1)
    return make_settings(auth=auth)


@pytest.mark.readiness("identity.activity_throttled")
async def test_a_read_answers_without_waiting_for_its_stamp(
    make_settings: Callable[..., Any], make_client: Callable[..., Any], database_url: str
) -> None:
    app = create_app(stamping_every_second(make_settings))
    client = await make_client(app)
    account = await register(client)
    await last_seen_written(app)
    await asyncio.sleep(1.1)  # the stamp falls due
    async with user_row_locked(database_url, account.id):
        # Were the read to write its stamp itself, it would wait for the lock.
        read = await asyncio.wait_for(client.get(f"{API}/me", headers=account.headers), timeout=3)
        assert read.status_code == 200
        before = read.json()["last_active_at"]
    await last_seen_written(app)
    assert await last_active(client, account.headers) > before


async def test_stamps_handed_over_are_written_before_the_app_stops(
    make_settings: Callable[..., Any], database_url: str
) -> None:
    app: FastAPI = create_app(stamping_every_second(make_settings))
    manager = LifespanManager(app)
    await manager.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://keel.test")
    account = await register(client)
    await last_seen_written(app)
    await asyncio.sleep(1.1)
    written_before = await stored_last_active(database_url, account.id)
    async with user_row_locked(database_url, account.id):
        assert (await client.get(f"{API}/me", headers=account.headers)).status_code == 200
        stopping = asyncio.create_task(manager.__aexit__(None, None, None))
        await asyncio.sleep(0.3)
        assert not stopping.done()  # waiting for the stamp it holds
    await stopping
    await client.aclose()
    assert await stored_last_active(database_url, account.id) > written_before


async def test_a_stamp_that_cannot_be_written_is_logged_and_later_ones_still_are(
    database_url: str, log_lines: Callable[[], str]
) -> None:
    database = Database(database_settings(database_url))
    stamps = LastSeenStamps(database, timedelta(seconds=1))
    written: list[uuid.UUID] = []

    async def broken(*_: Any) -> None:
        raise RuntimeError("the database went away")

    async def working(_: Any, row_ids: Any, *__: Any) -> None:
        written.extend(row_ids)

    try:
        stamps.hand_over(broken, uuid.uuid4(), now())
        await stamps.settle()
        assert "last_seen.not_written" in log_lines()
        assert "RuntimeError" in log_lines()
        assert "went away" not in log_lines()  # the error's type, not its text
        row_id = uuid.uuid4()
        stamps.hand_over(working, row_id, now())
        await stamps.settle()
        assert written == [row_id]
    finally:
        await database.dispose()
