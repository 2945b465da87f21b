"""Ephemeral shared state: a key-value cache with expiry, and pub/sub.

``MemoryCache`` serves one process; ``RedisCache`` serves many. Both keep the
same contract, proven by one test suite run against each. Pub/sub is
at-most-once on both: subscribers resync from the database after a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub

from keel.core.clock import monotonic


@dataclass(frozen=True, slots=True)
class PubSubMessage:
    channel: str
    data: bytes


class Subscription(Protocol):
    """Messages published to the subscribed channels after subscribing."""

    def __aiter__(self) -> AsyncIterator[PubSubMessage]: ...

    async def next_message(self, timeout_s: float) -> PubSubMessage | None:
        """The next message, or None when none arrives within ``timeout_s``."""
        ...


class Cache(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None: ...

    async def delete(self, key: str) -> bool: ...

    async def incr(self, key: str, *, ttl_s: float) -> int:
        """Add one; a new counter expires after ``ttl_s``."""
        ...

    async def publish(self, channel: str, data: bytes) -> int:
        """Send to current subscribers; returns how many received it."""
        ...

    def subscribe(self, *channels: str) -> contextlib.AbstractAsyncContextManager[Subscription]: ...

    async def ping(self) -> None: ...

    async def close(self) -> None: ...


class _MemorySubscription:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[PubSubMessage] = asyncio.Queue(maxsize=10_000)

    async def next_message(self, timeout_s: float) -> PubSubMessage | None:
        try:
            return await asyncio.wait_for(self.queue.get(), timeout_s)
        except TimeoutError:
            return None

    async def __aiter__(self) -> AsyncIterator[PubSubMessage]:
        while True:
            yield await self.queue.get()


class MemoryCache:
    """In-process cache and pub/sub for a single keel process."""

    def __init__(self) -> None:
        self._values: dict[str, tuple[bytes, float | None]] = {}
        self._subscribers: dict[str, set[_MemorySubscription]] = defaultdict(set)

    def _live(self, key: str) -> bytes | None:
        entry = self._values.get(key)
        if entry is None:
            return None
        value, expires_at = entry
        if expires_at is not None and expires_at <= monotonic():
            del self._values[key]
            return None
        return value

    async def get(self, key: str) -> bytes | None:
        return self._live(key)

    async def set(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        self._values[key] = (value, monotonic() + ttl_s if ttl_s is not None else None)

    async def delete(self, key: str) -> bool:
        existed = self._live(key) is not None
        self._values.pop(key, None)
        return existed

    async def incr(self, key: str, *, ttl_s: float) -> int:
        current = self._live(key)
        if current is None:
            self._values[key] = (b"1", monotonic() + ttl_s)
            return 1
        count = int(current) + 1
        self._values[key] = (str(count).encode(), self._values[key][1])
        return count

    async def publish(self, channel: str, data: bytes) -> int:
        delivered = 0
        for subscription in list(self._subscribers.get(channel, ())):
            with contextlib.suppress(asyncio.QueueFull):  # a stalled subscriber loses messages, not others
                subscription.queue.put_nowait(PubSubMessage(channel, data))
                delivered += 1
        return delivered

    @contextlib.asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[Subscription]:
        subscription = _MemorySubscription()
        for channel in channels:
            self._subscribers[channel].add(subscription)
        try:
            yield subscription
        finally:
            for channel in channels:
                self._subscribers[channel].discard(subscription)
                if not self._subscribers[channel]:
                    del self._subscribers[channel]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._values.clear()


class _RedisSubscription:
    def __init__(self, pubsub: PubSub, prefix: str) -> None:
        self.pubsub = pubsub
        self.prefix = prefix

    async def next_message(self, timeout_s: float) -> PubSubMessage | None:
        deadline = monotonic() + timeout_s
        while (remaining := deadline - monotonic()) > 0:
            message = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=remaining)
            if message is not None and message["type"] == "message":
                return PubSubMessage(message["channel"].decode().removeprefix(self.prefix), message["data"])
        return None

    async def __aiter__(self) -> AsyncIterator[PubSubMessage]:
        while True:
            message = await self.next_message(timeout_s=60.0)
            if message is not None:
                yield message


class RedisCache:
    """Redis-backed cache and pub/sub shared by every keel process."""

    def __init__(self, url: str, *, prefix: str = "keel", max_connections: int = 20, timeout_s: float = 1.0) -> None:
        self.prefix = prefix + ":"
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_s,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
        )
        self.client: Redis = Redis(connection_pool=pool)

    async def get(self, key: str) -> bytes | None:
        value = await self.client.get(self.prefix + key)
        return value.encode() if isinstance(value, str) else value

    async def set(self, key: str, value: bytes, *, ttl_s: float | None = None) -> None:
        px = int(ttl_s * 1000) if ttl_s is not None else None
        await self.client.set(self.prefix + key, value, px=px)

    async def delete(self, key: str) -> bool:
        return bool(await self.client.delete(self.prefix + key))

    async def incr(self, key: str, *, ttl_s: float) -> int:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(self.prefix + key)
            pipe.pexpire(self.prefix + key, int(ttl_s * 1000), nx=True)
            count, _ = await pipe.execute()
        return int(count)

    async def publish(self, channel: str, data: bytes) -> int:
        return int(await self.client.publish(self.prefix + channel, data))

    @contextlib.asynccontextmanager
    async def subscribe(self, *channels: str) -> AsyncIterator[Subscription]:
        pubsub = self.client.pubsub()
        try:
            await pubsub.subscribe(*(self.prefix + channel for channel in channels))
            # Wait for every confirmation: a message published after
            # subscribe() returns must reach this subscriber.
            confirmed = 0
            while confirmed < len(channels):
                message = await pubsub.get_message(timeout=5.0)
                if message is None:
                    raise ConnectionError("Redis did not confirm the subscription")
                if message["type"] == "subscribe":
                    confirmed += 1
            yield _RedisSubscription(pubsub, self.prefix)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()
