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
from tests.fixtures.waiting import eventually


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


async def state(live: Live, realtime: Realtime) -> tuple[int, frozenset[str], int | None]:
    assert realtime.hub.channels is not None
    return len(asyncio.all_tasks()), realtime.hub.channels.joined(), await redis_channels(live)


async def test_a_thousand_sessions_opened_and_closed_leave_nothing_behind(live: Live) -> None:
    realtime = platform(live.app).get(Realtime)
    owner = await register(live.http)
    device = await add_device(live, owner)
    ws, _ = await open_session(live, device)  # the first: the user's channel is joined once
    await ws.close()
    await asyncio.sleep(0.5)  # closing sessions' tasks finish
    before = await state(live, realtime)
    for _ in range(1000):
        ws, _ = await open_session(live, device)
        await ws.close()

    async def as_before() -> bool:  # once the last sessions' closing tasks are done
        return await state(live, realtime) == before

    assert await eventually(as_before, within_s=10)
    assert realtime.hub.by_user == {}
    assert realtime.presence.local == {}
