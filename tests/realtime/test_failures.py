"""The database erring under live sessions: a session hears of it in an
error frame or a close code, never through a crash; the process and the other
sessions go on, and the logs hold keel's own line, without a statement's
parameters or uvicorn's traceback."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.engine import make_url
from websockets.asyncio.client import connect

from keel.config import DatabaseSettings, RealtimeSettings, Settings, WorkerSettings
from keel.core.platform import platform
from keel.main import create_app
from tests.fixtures.accounts import register
from tests.fixtures.realtime import Live, add_device, closed_with, handshake, open_session, receive, send, serve
from tests.fixtures.relay import relay_to

UNCAUGHT = "Exception in ASGI application"  # uvicorn's line for an error the app let through


@contextlib.asynccontextmanager
async def table_away(live: Live, table: str) -> AsyncIterator[None]:
    """Statements on ``table`` fail, as a statement keel did not foresee failing would."""
    database = platform(live.app).database
    async with database.session(write=True) as session, session.begin():
        await session.execute(text(f"ALTER TABLE {table} RENAME TO {table}_away"))
    try:
        yield
    finally:
        async with database.session(write=True) as session, session.begin():
            await session.execute(text(f"ALTER TABLE {table}_away RENAME TO {table}"))


async def test_an_unforeseen_error_ends_only_its_session_with_1011(live: Live, log_lines: Callable[[], str]) -> None:
    owner = await register(live.http)
    sender, listener = await add_device(live, owner), await add_device(live, owner)
    a, _ = await open_session(live, sender)
    b, _ = await open_session(live, listener)
    async with table_away(live, "realtime_events"):
        await send(b, type="resume", after_seq=0)
        assert await closed_with(b) == 1011
        await send(a, type="event", id="lost", kind="k", payload=1)
        refused = await receive(a)
        assert (refused["type"], refused["code"], refused["id"]) == ("error", "not_stored", "lost")
    await send(a, type="event", id="kept", kind="k", payload=2)
    assert (await receive(a))["type"] == "ack"
    c, _ = await open_session(live, listener)
    await send(c, type="resume", after_seq=0)
    assert (await receive(c))["id"] == "kept"
    for ws in (a, c):
        await ws.close()
    logged = log_lines()
    assert "realtime.unhandled_error" in logged
    assert UNCAUGHT not in logged
    assert "[parameters:" not in logged  # the failed statement's, which name the user
    assert owner.id.replace("-", "") not in logged


@pytest.mark.postgres
async def test_with_the_database_away_sessions_are_told_to_retry_and_go_on_when_it_returns(
    make_settings: Callable[..., Settings], database_url: str, log_lines: Callable[[], str]
) -> None:
    url = make_url(database_url)
    async with relay_to(url.host or "127.0.0.1", url.port or 5432) as relay:
        through_relay = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
        settings = make_settings(realtime=RealtimeSettings(), worker=WorkerSettings(worker_in_process=False))
        database = DatabaseSettings(database_url=SecretStr(through_relay), db_pool_timeout_s=2)
        live = await serve(create_app(settings.model_copy(update={"database": database})))
        try:
            owner = await register(live.http)
            sender, listener = await add_device(live, owner), await add_device(live, owner)
            a, _, nonce = await handshake(live, sender)
            b, _ = await open_session(live, listener)
            await send(a, type="event", id="before", kind="k", payload=1)
            assert (await receive(a))["type"] == "ack"
            assert (await receive(b))["id"] == "before"

            relay.cut()  # a restart in progress: pooled connections reset, new ones refused
            await send(b, type="resume", after_seq=0)
            told: dict[str, Any] = await receive(b, timeout_s=10)
            assert (told["type"], told["code"]) == ("error", "unavailable")
            new_key = Ed25519PrivateKey.generate()
            new_public = new_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            rotate = {
                "type": "rotate_key",
                "public_key": base64.b64encode(new_public).decode(),
                "signature": base64.b64encode(sender.key.sign(nonce + new_public)).decode(),
            }
            await send(a, **rotate)
            told = await receive(a, timeout_s=10)
            assert (told["type"], told["code"]) == ("error", "unavailable")
            late = await connect(live.ws_url)
            challenge = await receive(late)
            signature = sender.key.sign(base64.b64decode(challenge["nonce"]))
            await send(late, type="auth", device_id=sender.id, signature=base64.b64encode(signature).decode())
            assert await closed_with(late, timeout_s=10) == 1013

            relay.restore()
            await send(b, type="resume", after_seq=0)  # sent again, as the error frame asked
            assert (await receive(b, timeout_s=10))["id"] == "before"
            await send(a, **rotate)
            assert (await receive(a, timeout_s=10))["type"] == "key_rotated"
            await send(a, type="event", id="after", kind="k", payload=2)
            assert (await receive(a, timeout_s=10))["type"] == "ack"
            assert (await receive(b))["id"] == "after"
            for ws in (a, b):
                await ws.close()
        finally:
            await live.stop()
    logged = log_lines()
    assert "db.unavailable" in logged
    assert UNCAUGHT not in logged
    assert "Traceback" not in logged
