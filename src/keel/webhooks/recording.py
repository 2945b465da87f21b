"""What webhook attempts came to, written with the delivery's new state.

An attempt that succeeded (2xx) finishes its delivery; 410 Gone finishes it
dead and disables the endpoint; any other failure schedules the next try
from the retry schedule (``Retry-After`` honoured for 429 and 503) or, the
schedule spent, finishes it dead with a ``webhook.exhausted`` audit row; an
endpoint failing for longer than ``KEEL_WEBHOOK_DISABLE_AFTER_FAILING_S`` is
disabled. An outcome is written only while its attempt's lease holds, so a
delivery whose lease ran out (and which another attempt may have taken up)
is never written over.

Outcomes are written by group commit: under load one transaction records
many attempts, with one statement for the deliveries that share a new state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from keel.config import WebhookSettings
from keel.core.clock import now
from keel.core.db import Database
from keel.core.group_commit import GroupCommit
from keel.core.logging import get_logger
from keel.core.request_info import RequestInfo
from keel.identity.audit.service import record
from keel.webhooks.deliveries.models import DEAD, DELIVERED
from keel.webhooks.deliveries.repository import DispatchRepository, Lease
from keel.webhooks.endpoints.models import WebhookEndpoint
from keel.webhooks.endpoints.repository import SubscribedEndpoints
from keel.webhooks.metrics import WebhookMetrics
from keel.webhooks.retries import next_delay

_log = get_logger("keel.webhooks")
_WORKER_ORIGIN = RequestInfo(user_agent="keel worker")


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt came to."""

    status_code: int | None
    error: str | None
    excerpt: str | None
    retry_after_s: float | None = None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True, slots=True)
class Finished:
    """An attempt made, to be written."""

    delivery: Mapping[str, Any]  # the claimed row: id, org_id, message_id, attempts, ...
    endpoint: WebhookEndpoint
    until: datetime  # the lease it was made under
    attempted_at: datetime
    duration_ms: int
    outcome: Outcome

    @property
    def attempts_made(self) -> int:
        return int(self.delivery["attempts"]) + 1

    @property
    def log_fields(self) -> dict[str, str]:
        return {"webhook_id": self.delivery["message_id"], "endpoint_id": str(self.endpoint.id)}

    def attempt_row(self) -> dict[str, Any]:
        return {
            "delivery_id": self.delivery["id"],
            "attempted_at": self.attempted_at,
            "status_code": self.outcome.status_code,
            "error": self.outcome.error,
            "duration_ms": self.duration_ms,
            "response_excerpt": self.outcome.excerpt,
        }


class Recorder:
    def __init__(self, database: Database, settings: WebhookSettings, metrics: WebhookMetrics) -> None:
        self.database = database
        self.settings = settings
        self.metrics = metrics
        self._commits = GroupCommit(self._write)

    async def record(self, finished: Finished) -> None:
        """Return once the attempt and its delivery's new state are committed."""
        await self._commits.submit(finished)

    def _next_state(self, finished: Finished, at: datetime) -> tuple[dict[str, Any], float | None]:
        """The delivery's new columns, and the delay before its next try (None: no more)."""
        outcome = finished.outcome
        common = {"last_status_code": outcome.status_code, "last_error": outcome.error}
        done = {**common, "finished_at": at, "next_attempt_at": None}
        if outcome.delivered:
            return {**done, "status": DELIVERED}, None
        if outcome.status_code == 410:
            return {**done, "status": DEAD}, None
        delay = next_delay(self.settings.webhook_retry_schedule_s, finished.attempts_made, outcome.retry_after_s)
        if delay is None:
            return {**done, "status": DEAD}, None
        return {**common, "next_attempt_at": at + timedelta(seconds=delay)}, delay

    async def _write(self, batch: list[Finished]) -> None:
        at = now()
        planned = [(finished, *self._next_state(finished, at)) for finished in batch]
        async with self.database.session(write=True) as session, session.begin():
            dispatch = DispatchRepository(session)
            held = await dispatch.finish([(Lease(f.delivery["id"], f.until), state) for f, state, _ in planned])
            kept = []
            for finished, state, delay in planned:
                if finished.delivery["id"] in held:
                    kept.append((finished, state, delay))
                else:  # its lease ran out first: another attempt may already be under way
                    _log.warning("webhook.lease_lost", **finished.log_fields)
            await dispatch.add_attempts([finished.attempt_row() for finished, _, _ in kept])
            endpoints = SubscribedEndpoints(session)
            await endpoints.succeeded(sorted({f.endpoint.id for f, _, _ in kept if f.outcome.delivered}))
            for finished, state, delay in kept:
                await self._consequences(session, finished, state, delay)

    async def _consequences(
        self, session: AsyncSession, finished: Finished, state: Mapping[str, Any], delay: float | None
    ) -> None:
        """Metrics, logs, audit rows and endpoint state after one attempt, in its transaction."""
        outcome, endpoint, fields = finished.outcome, finished.endpoint, finished.log_fields
        if outcome.delivered:
            self.metrics.attempts.labels(outcome="delivered").inc()
            _log.info("webhook.delivered", status=outcome.status_code, attempts=finished.attempts_made, **fields)
            return
        if outcome.status_code == 410:
            self.metrics.attempts.labels(outcome="dead").inc()
            await _disable(session, endpoint, "The endpoint answered 410 Gone.")
            return
        failing_since = await SubscribedEndpoints(session).failing(endpoint.id, finished.attempted_at)
        if state.get("status") == DEAD:
            self.metrics.attempts.labels(outcome="dead").inc()
            _log.warning("webhook.exhausted", attempts=finished.attempts_made, **fields)
            record(
                session,
                _WORKER_ORIGIN,
                "webhook.exhausted",
                org_id=finished.delivery["org_id"],
                target_type="webhook_delivery",
                target_id=finished.delivery["id"],
                details={
                    "endpoint_id": str(endpoint.id),
                    "attempts": finished.attempts_made,
                    "last_error": outcome.error,
                },
            )
        else:
            assert delay is not None
            self.metrics.attempts.labels(outcome="retried").inc()
            _log.info(
                "webhook.failed", status=outcome.status_code, error=outcome.error, retry_in_s=round(delay, 1), **fields
            )
        limit = timedelta(seconds=self.settings.webhook_disable_after_failing_s)
        if failing_since is not None and now() - failing_since >= limit:
            await _disable(session, endpoint, "Every attempt failed for too long.")


async def _disable(session: AsyncSession, endpoint: WebhookEndpoint, reason: str) -> None:
    if await SubscribedEndpoints(session).disable(endpoint.id, reason):
        _log.warning("webhook.endpoint_disabled", endpoint_id=str(endpoint.id), reason=reason)
        record(
            session,
            _WORKER_ORIGIN,
            "webhook.endpoint_disabled",
            org_id=endpoint.org_id,
            target_type="webhook_endpoint",
            target_id=endpoint.id,
            details={"reason": reason},
        )
