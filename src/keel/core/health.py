"""Liveness and readiness probes.

Ready means: the database answers, the schema is at the migration head, and
Redis (when configured) answers. A Redis outage degrades keel instead of
stopping it (limits and fan-out go local), so it reports ``degraded`` with 200;
a database problem is 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Literal

from keel.core import schema
from keel.core.cache import Cache
from keel.core.db import Database
from keel.core.logging import get_logger
from keel.core.ratelimit import RateLimiter

CheckStatus = Literal["ok", "degraded", "error"]
_CHECK_TIMEOUT_S = 2.0
_log = get_logger("keel.health")


@dataclass
class Readiness:
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def status(self) -> CheckStatus:
        statuses = {check["status"] for check in self.checks.values()}
        if "error" in statuses:
            return "error"
        return "degraded" if "degraded" in statuses else "ok"

    @property
    def http_status(self) -> int:
        return 503 if self.status == "error" else 200

    def body(self) -> dict[str, Any]:
        return {"status": self.status, "checks": self.checks}


async def _probe(awaitable: Awaitable[Any]) -> str | None:
    """Run a probe with a deadline; None when it succeeded, else a safe reason."""
    try:
        await asyncio.wait_for(awaitable, _CHECK_TIMEOUT_S)
    except TimeoutError:
        return "timed out"
    except Exception as exc:  # a probe reports failure; it never raises
        _log.warning("health.probe_failed", error=type(exc).__name__)
        return "unreachable"
    return None


class HealthChecker:
    def __init__(
        self, database: Database, *, cache: Cache | None, rate_limiter: RateLimiter, expected_revision: str | None
    ) -> None:
        self.database = database
        self.cache = cache
        self.rate_limiter = rate_limiter
        self.expected_revision = expected_revision

    async def readiness(self) -> Readiness:
        readiness = Readiness()
        db_error = await _probe(self.database.ping())
        readiness.checks["database"] = {"status": "error", "detail": db_error} if db_error else {"status": "ok"}
        readiness.checks["schema"] = (
            await self._schema() if not db_error else {"status": "error", "detail": "no database"}
        )
        if self.cache is not None:
            redis_error = await _probe(self.cache.ping())
            redis_ok = redis_error is None and not self.rate_limiter.degraded
            readiness.checks["redis"] = (
                {"status": "ok"}
                if redis_ok
                else {"status": "degraded", "detail": redis_error or "recovering", "fallback": "memory"}
            )
        return readiness

    async def _schema(self) -> dict[str, Any]:
        current: str | None = None

        async def read() -> None:
            nonlocal current
            current = await schema.current_revision(self.database.engine)

        error = await _probe(read())
        if error:
            return {"status": "error", "detail": error}
        status: CheckStatus = "ok" if current == self.expected_revision else "error"
        return {"status": status, "revision": current, "head": self.expected_revision}
