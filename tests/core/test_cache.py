"""One contract, two backends: the memory cache and the Redis cache behave alike."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from keel.core.cache import Cache, MemoryCache, RedisCache
from tests.fixtures.databases import redis_test_url
from tests.fixtures.waiting import eventually

BACKENDS = [pytest.param("memory", id="memory"), pytest.param("redis", id="redis", marks=pytest.mark.redis)]


@pytest.fixture(params=BACKENDS)
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    backend: Cache = MemoryCache() if request.param == "memory" else RedisCache(redis_test_url() or "")
    yield backend
    await backend.close()


def key() -> str:
    return f"test:{uuid.uuid4().hex}"


@pytest.mark.readiness("cache.contract")
async def test_get_set_delete(cache: Cache) -> None:
    name = key()
    assert await cache.get(name) is None
    await cache.set(name, b"value")
    assert await cache.get(name) == b"value"
    await cache.set(name, b"other")
    assert await cache.get(name) == b"other"
    assert await cache.delete(name) is True
    assert await cache.delete(name) is False
    assert await cache.get(name) is None


@pytest.mark.readiness("cache.contract")
async def test_values_expire(cache: Cache) -> None:
    name = key()
    await cache.set(name, b"brief", ttl_s=0.1)
    assert await cache.get(name) == b"brief"
    await asyncio.sleep(0.25)
    assert await cache.get(name) is None


@pytest.mark.readiness("cache.contract")
async def test_incr_counts_and_expires_from_first_hit(cache: Cache) -> None:
    name = key()
    assert [await cache.incr(name, ttl_s=0.3) for _ in range(3)] == [1, 2, 3]
    await asyncio.sleep(0.45)
    assert await cache.incr(name, ttl_s=0.3) == 1


@pytest.mark.readiness("cache.pubsub")
async def test_publish_reaches_every_subscriber_of_the_channel(cache: Cache) -> None:
    channel, other = key(), key()
    async with cache.subscribe(channel) as first, cache.subscribe(channel, other) as second:
        assert await cache.publish(channel, b"hello") == 2
        assert await cache.publish(other, b"only-second") == 1
        got_first = await first.next_message(timeout_s=2)
        got_second = [await second.next_message(timeout_s=2) for _ in range(2)]
        assert got_first is not None
        assert (got_first.channel, got_first.data) == (channel, b"hello")
        assert [(m.channel, m.data) for m in got_second if m] == [(channel, b"hello"), (other, b"only-second")]
        assert await first.next_message(timeout_s=0.1) is None


@pytest.mark.readiness("cache.pubsub")
async def test_unsubscribed_receives_nothing_and_publish_counts_zero(cache: Cache) -> None:
    channel = key()
    async with cache.subscribe(channel):
        pass
    assert await cache.publish(channel, b"nobody") == 0


@pytest.mark.readiness("cache.pubsub")
async def test_subscription_iterates(cache: Cache) -> None:
    channel = key()
    async with cache.subscribe(channel) as subscription:
        for index in range(3):
            await cache.publish(channel, str(index).encode())
        received = []
        async for message in subscription:
            received.append(message.data)
            if len(received) == 3:
                break
    assert received == [b"0", b"1", b"2"]


@pytest.mark.readiness("cache.contract")
async def test_ping(cache: Cache) -> None:
    await cache.ping()


@pytest.mark.readiness("cache.contract")
async def test_channels_are_joined_and_left_as_their_listeners_come_and_go(cache: Cache) -> None:
    heard: list[tuple[str, bytes]] = []
    arrived = asyncio.Event()

    def on_message(channel: str, data: bytes) -> None:
        heard.append((channel, data))
        arrived.set()

    channels = cache.channels(on_message, on_gap=lambda: None)
    first, second = key(), key()
    try:
        await channels.join(first)
        await channels.join(first)  # a second listener on this process
        await channels.join(second)
        assert channels.joined() == {first, second}
        assert await cache.publish(first, b"one") == 1
        await asyncio.wait_for(arrived.wait(), 5)
        await channels.leave(first)  # one listener left: still subscribed
        arrived.clear()
        await cache.publish(first, b"two")
        await asyncio.wait_for(arrived.wait(), 5)
        await channels.leave(first)
        await channels.leave(second)
        assert channels.joined() == frozenset()
        await asyncio.sleep(0.05)  # the unsubscription reaches the server
        assert await cache.publish(first, b"three") == 0
        await asyncio.sleep(0.05)
        assert heard == [(first, b"one"), (first, b"two")]
    finally:
        await channels.close()


@pytest.mark.readiness("cache.contract")
async def test_hash_fields_are_set_read_dropped_and_expire_with_their_key(cache: Cache) -> None:
    first, second, empty = key(), key(), key()
    await cache.put_fields([(first, "a", b"1"), (first, "b", b"2"), (second, "c", b"3")], ttl_s=0.3)
    assert await cache.fields_of([first, empty, second]) == [{"a": b"1", "b": b"2"}, {}, {"c": b"3"}]
    await cache.drop_field(first, "a")
    assert await cache.fields_of([first]) == [{"b": b"2"}]
    await asyncio.sleep(0.2)
    await cache.put_fields([(second, "c", b"4")], ttl_s=0.3)  # written again: lives on
    await asyncio.sleep(0.2)
    assert await cache.fields_of([first, second]) == [{}, {"c": b"4"}]


@pytest.mark.readiness("cache.contract")
async def test_publish_many_arrives_in_order(cache: Cache) -> None:
    heard: list[bytes] = []
    channels = cache.channels(lambda _, data: heard.append(data), on_gap=lambda: None)
    first, second = key(), key()
    try:
        await channels.join(first)
        await channels.join(second)
        await cache.publish_many([(first, b"1"), (second, b"2"), (first, b"3")])

        async def all_heard() -> bool:
            return len(heard) == 3

        assert await eventually(all_heard, within_s=5)
        assert heard == [b"1", b"2", b"3"]
    finally:
        await channels.close()
