"""Rate limiting with the `limits` library, per route group.

Counters live in Redis when ``KEEL_REDIS_URL`` is set, so every process shares
them; otherwise in memory. When Redis cannot be reached the limiter falls back
to local memory (warning once), reports itself degraded, and retries Redis
after a pause: a Redis outage never turns into 500s.

Every limited request counts, so the count on Redis is the limiter's own
script call on a pipelined connection (``redis_pipeline``) rather than the
`limits` library's, which goes through redis-py's per-call machinery. The
keys and the script's semantics are the library's: either can read the
other's counters.

A read on a route that settles its count (``settle_deferred_count``) need not
wait for that round trip before its own work: when the caller had ample room
at its last count, the count runs alongside the read's SQL and is awaited
before the response leaves; a refused count still answers 429. Writes and
callers near their limit are counted first, so a refused write does no work;
so is a caller whose previous count is still on its way, which shares that
count's round trip anyway (``coalesce``).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request, Response
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from keel.config import RateLimitSettings
from keel.core.coalesce import CoalescingCounter
from keel.core.errors import TooManyRequests
from keel.core.futures import mark_outcome_seen
from keel.core.logging import get_logger
from keel.core.network import client_ip
from keel.core.redis_pipeline import RedisPipeline, RedisReplyError, RedisUnavailable, pack, pipeline_supports

_log = get_logger("keel.ratelimit")
_REDIS_RETRY_AFTER_S = 5.0
_MAX_WINDOWS_KNOWN = 100_000
# The `limits` library's fixed-window count: add, and start the window's
# expiry on its first hit.
_INCR_EXPIRE = b"""
local current = redis.call("incrby", KEYS[1], tonumber(ARGV[2]))
if tonumber(current) == tonumber(ARGV[2]) then
    redis.call("expire", KEYS[1], ARGV[1])
end
return current
"""
_INCR_EXPIRE_SHA = hashlib.sha1(_INCR_EXPIRE).hexdigest().encode()  # noqa: S324 - Redis names scripts by SHA-1
_REDIS_FAILURES = (StorageError, RedisUnavailable, RedisReplyError)
# A caller counted alongside its work needs this share of its budget left at
# its last count: concurrent requests of one caller then stay within it.
_DEFER_ABOVE_SHARE_LEFT = 0.1
_DEFERRED_COUNT = "keel.deferred_rate_limit_count"
_MAY_DEFER = object()


@dataclass(frozen=True, slots=True)
class RateLimitDecision:
    allowed: bool
    limit: int
    remaining: int
    reset_after_s: int

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_after_s),
        }


class RateLimiter:
    def __init__(
        self,
        settings: RateLimitSettings,
        *,
        redis_url: str | None = None,
        redis_key_prefix: str = "keel",
        redis_timeout_s: float = 1.0,
        trusted_proxies: frozenset[str] = frozenset(),
    ) -> None:
        self.enabled = settings.enabled
        self.trusted_proxies = trusted_proxies
        self.groups: dict[str, RateLimitItem] = {
            "default": parse(settings.rate_limit_default),
            "auth": parse(settings.rate_limit_auth),
            "login_account": parse(settings.rate_limit_login_account),
        }
        self._memory = FixedWindowRateLimiter(MemoryStorage())
        self._redis: FixedWindowRateLimiter | None = None
        self._redis_counts: CoalescingCounter | None = None
        self._pipeline: RedisPipeline | None = None
        self._key_prefix = f"{redis_key_prefix}:limits:"
        if redis_url is not None:
            storage = RedisStorage(
                "async+" + redis_url,
                implementation="redispy",
                key_prefix=f"{redis_key_prefix}:limits",
                wrap_exceptions=True,
                socket_timeout=redis_timeout_s,
                socket_connect_timeout=redis_timeout_s,
            )
            self._redis = FixedWindowRateLimiter(storage)
            if pipeline_supports(redis_url):
                self._pipeline = RedisPipeline(redis_url, timeout_s=redis_timeout_s)
                self._redis_counts = CoalescingCounter(self._pipelined_incr)
            else:  # URL options only redis-py knows (TLS client certificates, say)
                self._redis_counts = CoalescingCounter(lambda key, expiry, amount: storage.incr(key, expiry, amount))
        self._redis_down_until = 0.0
        # Per counter: when its window ends and what was left at its last count.
        self._windows: dict[str, tuple[float, int]] = {}

    async def _pipelined_incr(self, key: str, expiry_s: int, amount: int) -> int:
        assert self._pipeline is not None
        arguments = (b"1", (self._key_prefix + key).encode(), b"%d" % expiry_s, b"%d" % amount)
        try:
            return int(await self._pipeline.execute(pack(b"EVALSHA", _INCR_EXPIRE_SHA, *arguments)))
        except RedisReplyError as error:
            if not str(error).startswith("NOSCRIPT"):
                raise
            return int(await self._pipeline.execute(pack(b"EVAL", _INCR_EXPIRE, *arguments)))  # caches it

    async def close(self) -> None:
        if self._pipeline is not None:
            await self._pipeline.close()

    @property
    def degraded(self) -> bool:
        """True while Redis is configured but the limiter is counting locally."""
        return self._redis is not None and self._redis_down_until > time.monotonic()

    @property
    def counts_remotely(self) -> bool:
        """Whether a count takes a round trip (to Redis), which other work may overlap."""
        return self._redis is not None and not self.degraded

    def has_room(self, group: str, subject: str) -> bool:
        """Whether ``subject``'s count may run alongside its work: its last
        count, on Redis, left it well within its budget (or its window has
        ended since), and no count of it is on its way now."""
        if not self.counts_remotely:
            return False  # a count in memory takes no round trip to overlap
        item = self.groups[group]
        key = item.key_for(group, subject)
        known = self._windows.get(key)
        if known is None or (self._redis_counts is not None and self._redis_counts.in_flight(key)):
            return False
        window_end, remaining = known
        return remaining > item.amount * _DEFER_ABOVE_SHARE_LEFT or window_end <= time.time()

    def _limiter(self) -> FixedWindowRateLimiter:
        if self._redis is not None and not self.degraded:
            return self._redis
        return self._memory

    async def hit(self, group: str, subject: str) -> RateLimitDecision:
        item = self.groups[group]
        limiter = self._limiter()
        try:
            return await self._hit(limiter, item, group, subject)
        except _REDIS_FAILURES:
            if limiter is self._memory:
                raise
            if not self.degraded:
                _log.warning("ratelimit.redis_unavailable", fallback="memory", retry_after_s=_REDIS_RETRY_AFTER_S)
            self._redis_down_until = time.monotonic() + _REDIS_RETRY_AFTER_S
            self._windows.clear()  # they were Redis's windows, not memory's
            return await self._hit(self._memory, item, group, subject)

    async def _hit(
        self, limiter: FixedWindowRateLimiter, item: RateLimitItem, group: str, subject: str
    ) -> RateLimitDecision:
        # One counter increment per request (the storage's own call, which
        # is what the limiter's hit() runs); the window's end is asked for
        # only when this process has not seen it yet: one Redis round trip
        # per request instead of the three of hit() + get_window_stats().
        # On Redis, concurrent hits on one key share their round trip.
        key = item.key_for(group, subject)
        if limiter is self._redis and self._redis_counts is not None:
            count = await self._redis_counts.incr(key, item.get_expiry())
        else:
            count = await limiter.storage.incr(key, item.get_expiry())
        moment = time.time()
        known = self._windows.get(key)
        window_end = known[0] if known is not None else None
        if count == 1:
            window_end = moment + item.get_expiry()
        elif window_end is None or window_end <= moment:
            window_end = await limiter.storage.get_expiry(key)
        remaining = max(0, item.amount - count)
        self._remember_window(key, window_end, remaining)
        return RateLimitDecision(
            allowed=count <= item.amount,
            limit=item.amount,
            remaining=remaining,
            reset_after_s=max(0, math.ceil(window_end - moment)),
        )

    def _remember_window(self, key: str, window_end: float, remaining: int) -> None:
        if key not in self._windows and len(self._windows) >= _MAX_WINDOWS_KNOWN:
            self._windows.clear()  # ends are re-learnt: one extra round trip each
        self._windows[key] = (window_end, remaining)

    def client_subject(self, request: Request) -> str:
        """Unauthenticated callers are counted by client address."""
        return "ip:" + client_ip(request.scope, self.trusted_proxies)


async def enforce_rate_limit(request: Request, response: Response, group: str, subject: str | None = None) -> None:
    """Count this request against ``group`` for ``subject`` (default: client IP).

    Sets the RateLimit-* headers on the response, or raises 429 with Retry-After.
    """
    limiter: RateLimiter = request.app.state.rate_limiter
    if not limiter.enabled:
        return
    subject = subject or limiter.client_subject(request)
    scope = request.scope
    if scope.get(_DEFERRED_COUNT) is _MAY_DEFER and limiter.has_room(group, subject):
        scope[_DEFERRED_COUNT] = asyncio.ensure_future(limiter.hit(group, subject))
        return
    _apply(await limiter.hit(group, subject), response)


def count_alongside(request: Request, group: str, subject: str) -> asyncio.Future[RateLimitDecision] | None:
    """Start counting the request now, so that work which changes nothing
    (a write's BEGIN and the lookup of its caller) overlaps the round trip;
    ``settle_count`` then applies it before any change is made. None where
    there is no round trip to overlap (limits off, or counted in memory):
    the caller counts with ``enforce_rate_limit`` as usual."""
    limiter: RateLimiter = request.app.state.rate_limiter
    if not limiter.enabled or not limiter.counts_remotely:
        return None
    pending = asyncio.ensure_future(limiter.hit(group, subject))
    pending.add_done_callback(mark_outcome_seen)  # left unawaited when the lookup fails
    return pending


async def settle_count(pending: asyncio.Future[RateLimitDecision], response: Response) -> None:
    """Apply a count started by ``count_alongside``: RateLimit-* headers, or 429."""
    _apply(await pending, response)


def _apply(decision: RateLimitDecision, response: Response | None) -> None:
    headers = decision.headers()
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, decision.reset_after_s))
        raise TooManyRequests("Rate limit exceeded; retry later.", headers=headers)
    if response is not None:
        response.headers.update(headers)


def allow_deferred_count(request: Request) -> None:
    """Let this request's count run alongside its work; the route then calls
    ``settle_deferred_count`` before replying (only reads: a write must not
    run unless counted first)."""
    request.scope[_DEFERRED_COUNT] = _MAY_DEFER


async def settle_deferred_count(request: Request, response: Response | None) -> None:
    """Await the request's count if it was deferred: RateLimit-* headers on
    ``response``, or 429 (which outranks any error the work ended in)."""
    pending = request.scope.pop(_DEFERRED_COUNT, None)
    if isinstance(pending, asyncio.Future):
        _apply(await pending, response)


def abandon_deferred_count(request: Request) -> None:
    """A cancelled request leaves its count to finish on its own."""
    pending = request.scope.pop(_DEFERRED_COUNT, None)
    if isinstance(pending, asyncio.Future):
        pending.add_done_callback(mark_outcome_seen)


def rate_limit(group: str) -> Callable[..., Awaitable[None]]:
    """A dependency limiting ``group`` per client IP (for unauthenticated routes)."""

    async def enforce(request: Request, response: Response) -> None:
        await enforce_rate_limit(request, response, group)

    return enforce
