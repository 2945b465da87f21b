"""Presence: an org's members online now with their sessions and devices,
read from a user → sessions index; sessions nobody refreshes expire; with
Redis configured but down, this process's sessions are still listed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

import orjson
from pydantic import SecretStr

from keel.config import RedisSettings
from keel.core.platform import platform
from tests.fixtures.accounts import API, register
from tests.fixtures.realtime import Live, add_device, open_session

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


async def presence(live: Live, org_id: str, headers: dict[str, str]) -> dict[str, object]:
    response = await live.http.get(f"{API}/orgs/{org_id}/presence", headers=headers)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_an_org_sees_its_members_online_with_their_devices(live: Live) -> None:
    owner, stranger = await register(live.http, name="Ada"), await register(live.http)
    org = owner.personal_org_id
    assert (await presence(live, org, owner.headers))["items"] == []
    phone = await add_device(live, owner, "Ada's phone")
    ws, ready = await open_session(live, phone)
    browser, _ = await open_session(live, token=owner.access_token)
    stranger_ws, _ = await open_session(live, await add_device(live, stranger))
    seen = await presence(live, org, owner.headers)
    assert seen["degraded"] is False
    [member] = cast(list[dict[str, Any]], seen["items"])
    assert (member["user_id"], member["name"]) == (owner.id, "Ada")
    sessions = {s["session_id"]: s for s in member["sessions"]}
    assert sessions[ready["session_id"]]["device_id"] == phone.id
    assert sessions[ready["session_id"]]["device_name"] == "Ada's phone"
    assert sorted(s["device_type"] for s in sessions.values()) == ["phone", "web"]
    await ws.close()
    await browser.close()
    await asyncio.sleep(0.1)
    assert (await presence(live, org, owner.headers))["items"] == []
    # Another org's presence is not found for a stranger.
    foreign = await live.http.get(f"{API}/orgs/{org}/presence", headers=stranger.headers)
    assert foreign.status_code == 404
    await stranger_ws.close()


async def test_sessions_nobody_refreshes_drop_out(live: Live) -> None:
    owner = await register(live.http)
    cache = platform(live.app).cache
    # As a process that crashed would leave it: written, then never again.
    entry = {"device_id": None, "connected_at": time.time()}
    key = f"realtime.presence.{uuid.UUID(owner.id).hex}"
    await cache.put_fields([(key, "crashed", orjson.dumps({**entry, "expires_at": time.time() + 0.3}))], ttl_s=60)
    [member] = cast(list[dict[str, Any]], (await presence(live, owner.personal_org_id, owner.headers))["items"])
    assert [s["session_id"] for s in member["sessions"]] == ["crashed"]
    await asyncio.sleep(0.4)
    assert (await presence(live, owner.personal_org_id, owner.headers))["items"] == []


async def test_a_live_session_is_refreshed_and_stays(live_keel: Callable[..., Awaitable[Live]]) -> None:
    live = await live_keel(realtime_presence_ttl_s=0.3)
    owner = await register(live.http)
    ws, _ = await open_session(live, await add_device(live, owner))
    await asyncio.sleep(0.6)  # two TTLs: written again meanwhile
    assert len((await presence(live, owner.personal_org_id, owner.headers))["items"]) == 1  # type: ignore[arg-type]
    await ws.close()


async def test_with_redis_down_presence_is_local_and_readiness_says_degraded(
    live_keel: Callable[..., Awaitable[Live]],
) -> None:
    redis = RedisSettings(redis_url=SecretStr(UNREACHABLE_REDIS), redis_timeout_s=0.2)
    live = await live_keel(redis=redis)
    owner = await register(live.http)
    sender, listener = await add_device(live, owner), await add_device(live, owner)
    a, _ = await open_session(live, sender)
    b, _ = await open_session(live, listener)
    seen = await presence(live, owner.personal_org_id, owner.headers)
    assert seen["degraded"] is True
    assert len(seen["items"][0]["sessions"]) == 2  # type: ignore[index]
    # Events still flow between this process's sessions.
    await a.send(orjson.dumps({"type": "event", "id": "x", "kind": "k", "payload": 1}).decode())
    assert orjson.loads(await asyncio.wait_for(a.recv(), 5))["type"] == "ack"
    assert orjson.loads(await asyncio.wait_for(b.recv(), 5))["id"] == "x"
    ready = await live.http.get("/health/ready")
    assert ready.json()["checks"]["redis"]["status"] == "degraded"
    await a.close()
    await b.close()
