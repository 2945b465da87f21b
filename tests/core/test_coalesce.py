"""Concurrent increments of one key share a round trip and keep exact counts."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from limits.aio.storage import RedisStorage
from limits.errors import StorageError

from keel.core.coalesce import CoalescingCounter
from tests.fixtures.databases import redis_test_url


class SlowStore:
    """Counters behind a delay, as a network store is: calls overlap."""

    def __init__(self, delay_s: float = 0.01) -> None:
        self.delay_s = delay_s
        self.totals: dict[str, int] = {}
        self.calls: list[int] = []  # the amount of each call
        self.fail = False

    async def increment(self, key: str, expiry_s: int, amount: int) -> int:
        self.calls.append(amount)
        await asyncio.sleep(self.delay_s)
        if self.fail:
            raise StorageError(ConnectionError("store down"))
        self.totals[key] = self.totals.get(key, 0) + amount
        return self.totals[key]


async def test_concurrent_hits_get_every_count_once_in_fewer_calls() -> None:
    store = SlowStore()
    counter = CoalescingCounter(store.increment)
    counts = await asyncio.gather(*(counter.incr("k", 60) for _ in range(50)))
    assert sorted(counts) == list(range(1, 51))
    assert store.totals["k"] == 50
    assert sum(store.calls) == 50
    assert len(store.calls) <= 3  # the first alone, the rest gathered behind it


async def test_an_uncontended_key_goes_straight_through() -> None:
    store = SlowStore(delay_s=0)
    counter = CoalescingCounter(store.increment)
    assert [await counter.incr("k", 60) for _ in range(3)] == [1, 2, 3]
    assert store.calls == [1, 1, 1]


async def test_keys_are_counted_apart() -> None:
    store = SlowStore()
    counter = CoalescingCounter(store.increment)
    counts = await asyncio.gather(*(counter.incr(key, 60) for key in ["a", "b"] * 10))
    assert sorted(counts[0::2]) == sorted(counts[1::2]) == list(range(1, 11))


async def test_a_failed_batch_fails_each_member_and_the_next_batch_starts_afresh() -> None:
    store = SlowStore()
    counter = CoalescingCounter(store.increment)
    store.fail = True
    results = await asyncio.gather(*(counter.incr("k", 60) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(result, StorageError) for result in results)
    store.fail = False
    assert await counter.incr("k", 60) == 1


async def test_a_cancelled_member_does_not_strand_the_others() -> None:
    store = SlowStore(delay_s=0.05)
    counter = CoalescingCounter(store.increment)
    first = asyncio.create_task(counter.incr("k", 60))
    await asyncio.sleep(0.01)  # the first call is in flight: the next ones gather
    gathered = [asyncio.create_task(counter.incr("k", 60)) for _ in range(3)]
    await asyncio.sleep(0)
    gathered[0].cancel()
    assert await first == 1
    assert sorted(await asyncio.gather(*gathered[1:])) == [3, 4]  # the cancelled hit still counted
    with pytest.raises(asyncio.CancelledError):
        await gathered[0]


@pytest.mark.redis
async def test_on_redis_many_concurrent_hits_count_exactly() -> None:
    url = redis_test_url()
    assert url is not None
    storage = RedisStorage("async+" + url, implementation="redispy", key_prefix=f"keel-test-{uuid.uuid4().hex}")
    calls: list[int] = []

    async def increment(key: str, expiry_s: int, amount: int) -> int:
        calls.append(amount)
        return await storage.incr(key, expiry_s, amount)

    counter = CoalescingCounter(increment)
    counts = await asyncio.gather(*(counter.incr("hot", 60) for _ in range(200)))
    assert sorted(counts) == list(range(1, 201))
    assert await storage.get("hot") == 200
    assert len(calls) < 200
    assert await storage.get_expiry("hot") > 0  # the window still expires
