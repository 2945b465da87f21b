"""Rate limiting with the `limits` library, per route group.

Counters live in Redis when ``KEEL_REDIS_URL`` is set (the library's
storage, on redis-py with hiredis), so every process shares them; each
process draws a budget from them in leases (``accelerators.quota_leases``).
Otherwise they live in the library's memory storage, where every request is
counted. When Redis cannot be reached the limiter falls back to local memory
(one warning, and one line when Redis is back), reports itself degraded, and
retries Redis after a pause: a Redis outage never turns into 500s.

A request is counted before its handler runs (``authenticate`` counts by
the caller's verified identity before any lookup), so a refused request
does no SQL.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Request, Response
from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.errors import StorageError
from redis.asyncio import BlockingConnectionPool

from keel.config import RateLimitSettings
from keel.core.accelerators.quota_leases import QuotaLeases
from keel.core.errors import TooManyRequests
from keel.core.logging import get_logger
from keel.core.network import client_ip
from keel.core.platform import request_platform

_log = get_logger("keel.ratelimit")
_REDIS_RETRY_AFTER_S = 5.0
_MAX_WINDOWS_KNOWN = 100_000


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
        redis_pool_size: int = 20,
        trusted_proxies: frozenset[str] = frozenset(),
    ) -> None:
        self.enabled = settings.enabled
        self.trusted_proxies = trusted_proxies
        self.groups: dict[str, RateLimitItem] = {
            "default": parse(settings.rate_limit_default),
            "auth": parse(settings.rate_limit_auth),
            "login_account": parse(settings.rate_limit_login_account),
        }
        # In memory every request is counted (a count costs no round trip).
        self._memory = QuotaLeases(MemoryStorage(), max_lease=1, max_windows=_MAX_WINDOWS_KNOWN)
        self._redis: QuotaLeases | None = None
        self._redis_pool: BlockingConnectionPool | None = None
        self._redis_lost = False
        if redis_url is not None:
            self._redis_pool = BlockingConnectionPool.from_url(
                redis_url,
                max_connections=redis_pool_size,
                timeout=redis_timeout_s,  # waiting for a free connection, as for a reply
                socket_timeout=redis_timeout_s,
                socket_connect_timeout=redis_timeout_s,
            )
            storage = RedisStorage(
                "async+" + redis_url,
                implementation="redispy",
                key_prefix=f"{redis_key_prefix}:limits",
                wrap_exceptions=True,
                connection_pool=self._redis_pool,  # type: ignore[arg-type]  # documented; typed as scalars only
            )
            self._redis = QuotaLeases(storage, max_windows=_MAX_WINDOWS_KNOWN)
        self._redis_down_until = 0.0

    async def close(self) -> None:
        if self._redis_pool is not None:
            await self._redis_pool.aclose()

    @property
    def degraded(self) -> bool:
        """True while Redis is configured but the limiter is counting locally."""
        return self._redis is not None and self._redis_down_until > time.monotonic()

    def _quotas(self) -> QuotaLeases:
        if self._redis is not None and not self.degraded:
            return self._redis
        return self._memory

    async def hit(self, group: str, subject: str) -> RateLimitDecision:
        item = self.groups[group]
        quotas = self._quotas()
        try:
            decision = await self._hit(quotas, item, group, subject)
        except StorageError:
            if self._redis is None or quotas is self._memory:
                raise
            if not self._redis_lost:
                _log.warning("ratelimit.redis_unavailable", fallback="memory", retry_after_s=_REDIS_RETRY_AFTER_S)
                self._redis_lost = True
            self._redis_down_until = time.monotonic() + _REDIS_RETRY_AFTER_S
            self._redis.forget()  # Redis may come back without its counters
            return await self._hit(self._memory, item, group, subject)
        if quotas is self._redis and self._redis_lost:
            _log.info("ratelimit.redis_recovered")
            self._redis_lost = False
        return decision

    async def _hit(self, quotas: QuotaLeases, item: RateLimitItem, group: str, subject: str) -> RateLimitDecision:
        admission = await quotas.admit(item.key_for(group, subject), item.amount, item.get_expiry())
        return RateLimitDecision(
            allowed=admission.allowed,
            limit=item.amount,
            remaining=admission.remaining,
            reset_after_s=max(0, math.ceil(admission.window_end - time.time())),
        )

    def client_subject(self, request: Request) -> str:
        """Unauthenticated callers are counted by client address."""
        return "ip:" + client_ip(request.scope, self.trusted_proxies)


async def enforce_rate_limit(request: Request, response: Response, group: str, subject: str | None = None) -> None:
    """Count this request against ``group`` for ``subject`` (default: client IP).

    Sets the RateLimit-* headers on the response, or raises 429 with Retry-After.
    """
    limiter = request_platform(request).rate_limiter
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
