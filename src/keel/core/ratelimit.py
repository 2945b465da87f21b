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
"""

from __future__ import annotations

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
        self._window_ends: dict[str, float] = {}

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
            self._window_ends.clear()  # they were Redis's windows, not memory's
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
        window_end = self._window_ends.get(key)
        if count == 1:
            window_end = moment + item.get_expiry()
        elif window_end is None or window_end <= moment:
            window_end = await limiter.storage.get_expiry(key)
        self._remember_window_end(key, window_end)
        return RateLimitDecision(
            allowed=count <= item.amount,
            limit=item.amount,
            remaining=max(0, item.amount - count),
            reset_after_s=max(0, math.ceil(window_end - moment)),
        )

    def _remember_window_end(self, key: str, window_end: float) -> None:
        if key not in self._window_ends and len(self._window_ends) >= _MAX_WINDOWS_KNOWN:
            self._window_ends.clear()  # ends are re-learnt: one extra round trip each
        self._window_ends[key] = window_end

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
    decision = await limiter.hit(group, subject or limiter.client_subject(request))
    headers = decision.headers()
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, decision.reset_after_s))
        raise TooManyRequests("Rate limit exceeded; retry later.", headers=headers)
    response.headers.update(headers)


def rate_limit(group: str) -> Callable[..., Awaitable[None]]:
    """A dependency limiting ``group`` per client IP (for unauthenticated routes)."""

    async def enforce(request: Request, response: Response) -> None:
        await enforce_rate_limit(request, response, group)

    return enforce
