"""Ephemeral shared state: a key-value cache with expiry, and pub/sub.

``MemoryCache`` serves one process; ``RedisCache`` serves many. Both keep the
same contract, proven by one test suite run against each. Pub/sub is
at-most-once on both: subscribers resync from the database after a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from keel.core.clock import monotonic
from keel.core.logging import get_logger

_log = get_logger("keel.cache")


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


OnMessage = Callable[[str, bytes], None]


class Channels(Protocol):
    """A process's subscriptions to many channels, each joined and left as
    its listeners come and go (counted: joined twice, left twice)."""

    async def join(self, channel: str) -> None:
        """Subscribe; once it returns, messages published to ``channel`` arrive
        (unless the cache is unreachable: then ``on_gap`` follows its return)."""
        ...

    async def leave(self, channel: str) -> None: ...

    def joined(self) -> frozenset[str]: ...

    async def close(self) -> None: ...


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

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        """Publish each (channel, data), in order, in one round trip."""
        ...

    def subscribe(self, *channels: str) -> contextlib.AbstractAsyncContextManager[Subscription]: ...

    async def put_fields(self, entries: Sequence[tuple[str, str, bytes]], *, ttl_s: float) -> None:
        """Set each (key, field, value) of hashes; each key written expires
        ``ttl_s`` from now (its fields with it)."""
        ...

    async def drop_field(self, key: str, field: str) -> None: ...

    async def fields_of(self, keys: Sequence[str]) -> list[dict[str, bytes]]:
        """Each key's fields (empty when it has none), in the order asked."""
        ...

    def channels(self, on_message: OnMessage, on_gap: Callable[[], None]) -> Channels:
        """Subscriptions that come and go, over one connection: ``on_message``
        hears each message of a joined channel; ``on_gap`` is called when
        messages may have been lost (the connection to Redis came back)."""
        ...

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
        self._channel_groups: dict[str, set[_MemoryChannels]] = defaultdict(set)
        self._hashes: dict[str, tuple[dict[str, bytes], float]] = {}

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
        groups = self._channel_groups.get(channel, ())
        for group in groups:
            asyncio.get_running_loop().call_soon(group.on_message, channel, data)
        return delivered + len(groups)

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        for channel, data in messages:
            await self.publish(channel, data)

    def channels(self, on_message: OnMessage, on_gap: Callable[[], None]) -> Channels:
        return _MemoryChannels(self._channel_groups, on_message)

    def _hash(self, key: str) -> dict[str, bytes] | None:
        entry = self._hashes.get(key)
        if entry is None:
            return None
        if entry[1] <= monotonic():
            del self._hashes[key]
            return None
        return entry[0]

    async def put_fields(self, entries: Sequence[tuple[str, str, bytes]], *, ttl_s: float) -> None:
        expires_at = monotonic() + ttl_s
        for key, field, value in entries:
            fields = self._hash(key) or {}
            fields[field] = value
            self._hashes[key] = (fields, expires_at)

    async def drop_field(self, key: str, field: str) -> None:
        fields = self._hash(key)
        if fields is not None:
            fields.pop(field, None)
            if not fields:
                del self._hashes[key]

    async def fields_of(self, keys: Sequence[str]) -> list[dict[str, bytes]]:
        return [dict(self._hash(key) or {}) for key in keys]

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


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class _MemoryChannels:
    def __init__(self, groups: dict[str, set[_MemoryChannels]], on_message: OnMessage) -> None:
        self.groups = groups
        self.on_message = on_message
        self.counts: Counter[str] = Counter()

    async def join(self, channel: str) -> None:
        self.counts[channel] += 1
        self.groups[channel].add(self)

    async def leave(self, channel: str) -> None:
        self.counts[channel] -= 1
        if self.counts[channel] <= 0:
            del self.counts[channel]
            self.groups[channel].discard(self)
            if not self.groups[channel]:
                del self.groups[channel]

    def joined(self) -> frozenset[str]:
        return frozenset(self.counts)

    async def close(self) -> None:
        for channel in list(self.counts):
            self.counts[channel] = 1
            await self.leave(channel)


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

    async def publish_many(self, messages: Sequence[tuple[str, bytes]]) -> None:
        if not messages:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for channel, data in messages:
                pipe.publish(self.prefix + channel, data)
            await pipe.execute()

    def channels(self, on_message: OnMessage, on_gap: Callable[[], None]) -> Channels:
        return _RedisChannels(self.client, self.prefix, on_message, on_gap)

    async def put_fields(self, entries: Sequence[tuple[str, str, bytes]], *, ttl_s: float) -> None:
        if not entries:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for key, field, value in entries:
                pipe.hset(self.prefix + key, field, value)
            for key in {key for key, _, _ in entries}:
                pipe.pexpire(self.prefix + key, int(ttl_s * 1000))
            await pipe.execute()

    async def drop_field(self, key: str, field: str) -> None:
        await self.client.hdel(self.prefix + key, field)

    async def fields_of(self, keys: Sequence[str]) -> list[dict[str, bytes]]:
        if not keys:
            return []
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hgetall(self.prefix + key)
            found = await pipe.execute()
        return [{_text(f): v for f, v in fields.items()} for fields in found]

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()


class _RedisChannels:
    """One Redis pub/sub connection for all of a process's channels, read by
    one task that reconnects (subscribing again to every joined channel, and
    calling ``on_gap``) whenever the connection is lost."""

    _CONFIRM_S = 2.0
    _RECONNECT_S = 0.5

    def __init__(self, client: Redis, prefix: str, on_message: OnMessage, on_gap: Callable[[], None]) -> None:
        self.client = client
        self.prefix = prefix
        self.on_message = on_message
        self.on_gap = on_gap
        self.counts: Counter[str] = Counter()
        self._pubsub: PubSub | None = None
        self._confirming: dict[str, list[asyncio.Future[None]]] = defaultdict(list)
        self._wanted = asyncio.Event()  # something is joined: Redis refuses to read a pub/sub without
        self._tried = asyncio.Event()
        self._lost = False
        self._reader = asyncio.get_running_loop().create_task(self._read(), name="keel-cache-channels")

    async def join(self, channel: str) -> None:
        self.counts[channel] += 1
        self._wanted.set()
        if self.counts[channel] > 1:
            return  # subscribed already
        with contextlib.suppress(TimeoutError):  # the first connection, made or failed
            await asyncio.wait_for(self._tried.wait(), self._CONFIRM_S)
        pubsub = self._pubsub
        if pubsub is None:
            return  # Redis is away: the reader subscribes it once back, and reports the gap
        confirmed = asyncio.get_running_loop().create_future()
        self._confirming[channel].append(confirmed)
        try:
            await pubsub.subscribe(self.prefix + channel)
            await asyncio.wait_for(asyncio.shield(confirmed), self._CONFIRM_S)
        except (TimeoutError, ConnectionError, OSError, RedisError):
            pass  # the reader reconnects, subscribes everything joined, and reports the gap
        finally:
            with contextlib.suppress(ValueError):
                self._confirming[channel].remove(confirmed)
            if not self._confirming[channel]:
                self._confirming.pop(channel, None)

    async def leave(self, channel: str) -> None:
        self.counts[channel] -= 1
        if self.counts[channel] > 0:
            return
        del self.counts[channel]
        if self._pubsub is not None:
            with contextlib.suppress(ConnectionError, OSError, RedisError):
                await self._pubsub.unsubscribe(self.prefix + channel)

    def joined(self) -> frozenset[str]:
        return frozenset(self.counts)

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader

    async def _read(self) -> None:
        while True:
            await self._wanted.wait()
            pubsub = self.client.pubsub()
            try:
                subscribed: set[str] = set()
                while missing := set(self.counts) - subscribed:  # joins while subscribing
                    await pubsub.subscribe(*(self.prefix + channel for channel in missing))
                    subscribed |= missing
                self._pubsub = pubsub
                self._tried.set()
                if self._lost:
                    _log.info("cache.channels_recovered", channels=len(self.counts))
                    self._lost = False
                    self.on_gap()
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # connection lost: messages published meanwhile are gone
                if not self._lost:
                    _log.warning("cache.channels_lost", error=type(exc).__name__)
                    self._lost = True
                    self.on_gap()
                self._tried.set()
                await asyncio.sleep(self._RECONNECT_S)
            finally:
                self._pubsub = None
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _dispatch(self, message: dict[str, object]) -> None:
        raw = message["channel"]
        channel = (raw.decode() if isinstance(raw, bytes) else str(raw)).removeprefix(self.prefix)
        if message["type"] == "subscribe":
            for confirmed in self._confirming.get(channel, ()):
                if not confirmed.done():
                    confirmed.set_result(None)
        elif message["type"] == "message":
            data = message["data"]
            self.on_message(channel, data if isinstance(data, bytes) else str(data).encode())
