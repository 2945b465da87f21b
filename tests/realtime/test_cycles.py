"""Sessions leave nothing behind: after 1,000 connects and disconnects the
process holds the channels, tasks and session state it held before."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from keel.core.platform import platform
from keel.realtime.services import Realtime
from tests.fixtures.accounts import register
from tests.fixtures.databases import redis_test_url
from tests.fixtures.realtime import Live, add_device, open_session


async def redis_channels(live: Live) -> int | None:
    """Channels of this app's prefix subscribed on Redis, when the suite runs with Redis."""
    url = redis_test_url()
    if url is None:
        return None
    prefix = platform(live.app).settings.redis.redis_key_prefix
    client = Redis.from_url(url)
    try:
        return len(await client.pubsub_channels(f"{prefix}:*"))
    finally:
        await client.aclose()


async def settled_tasks() -> int:
    await asyncio.sleep(0.2)  # closing sessions' tasks finish
    return len(asyncio.all_tasks())


async def test_a_thousand_sessions_opened_and_closed_leave_nothing_behind(live: Live) -> None:
    realtime = platform(live.app).get(Realtime)
    owner = await register(live.http)
    device = await add_device(live, owner)
    ws, _ = await open_session(live, device)  # the first: the user's channel is joined once
    await ws.close()
    before = (await settled_tasks(), realtime.hub.channels.joined(), await redis_channels(live))  # type: ignore[union-attr]
    for _ in range(1000):
        ws, _ = await open_session(live, device)
        await ws.close()
    after = (await settled_tasks(), realtime.hub.channels.joined(), await redis_channels(live))  # type: ignore[union-attr]
    assert after == before
    assert realtime.hub.by_user == {}
    assert realtime.presence.local == {}
