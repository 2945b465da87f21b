"""Sends due webhook deliveries: one of the worker's passes.

Each pass leases as many due deliveries as there are free places (at most
``KEEL_WEBHOOK_MAX_CONCURRENCY`` in flight per process, and
``KEEL_WEBHOOK_MAX_CONCURRENCY_PER_ENDPOINT`` per endpoint), shared out in
turn across the endpoints that have some, and starts an attempt for each in
a task of its own: one slow receiver holds its own places and never the
worker's loop, and its backlog never stands before another endpoint's
deliveries. An endpoint that keeps failing rests (``resting.py``).

An attempt is signed afresh (its timestamp is now), sent with one shared
HTTP client whose resolver refuses private addresses, bounded by
``KEEL_WEBHOOK_TIMEOUT_S``, without following redirects, and only the first
bytes of the answer are read. Its outcome is written with the delivery's new
state by the recorder (``recording.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from keel import __version__
from keel.config import WebhookSettings
from keel.core.clock import monotonic, now
from keel.core.db import Database
from keel.core.logging import get_logger
from keel.core.token_bucket import TokenBucket
from keel.webhooks import signing
from keel.webhooks.deliveries.repository import DispatchRepository
from keel.webhooks.endpoints.models import WebhookEndpoint
from keel.webhooks.endpoints.repository import SubscribedEndpoints
from keel.webhooks.endpoints.service import signing_secrets
from keel.webhooks.metrics import WebhookMetrics
from keel.webhooks.recording import Finished, Outcome, Recorder
from keel.webhooks.resting import Resting
from keel.webhooks.retries import parse_retry_after
from keel.webhooks.secret_box import SecretBox
from keel.webhooks.targets import GuardedResolver, TargetRefused, literal_refused

_log = get_logger("keel.webhooks")
EXCERPT_BYTES = 512
_USER_AGENT = f"keel-webhooks/{__version__}"


def lease_for(timeout_s: float) -> timedelta:
    """A delivery's lease: well past its attempt's timeout and recording, so
    only a dead worker's lease runs out."""
    return timedelta(seconds=2 * timeout_s + 5)


# How often the dead-letter and disabled-endpoint gauges are counted again.
_GAUGES_EVERY_S = 15.0


class RateLimiter:
    """Attempts started per second per endpoint: a token bucket each, in this process."""

    def __init__(self, per_s: float) -> None:
        self.per_s = per_s
        self.buckets: dict[uuid.UUID, TokenBucket] = {}

    def exhausted(self, endpoint_id: uuid.UUID) -> bool:
        bucket = self.buckets.get(endpoint_id)
        return bucket is not None and bucket.empty()

    def take(self, endpoint_id: uuid.UUID) -> bool:
        return self.buckets.setdefault(endpoint_id, TokenBucket(self.per_s)).take()


class Dispatcher:
    name = "webhooks.dispatcher"

    def __init__(
        self,
        database: Database,
        settings: WebhookSettings,
        secrets: SecretBox,
        metrics: WebhookMetrics,
        *,
        wake: Callable[[], None],
        look_every_s: float,
    ) -> None:
        """``wake``: asks the worker for a pass now (an attempt finished, so a
        place is free). ``look_every_s``: how often to look for due deliveries
        (retries coming due, another process's new ones) when nothing says
        there are any."""
        self.database = database
        self.wake = wake
        self.look_every_s = look_every_s
        self._maybe_due = True
        self._looked_at = monotonic()
        self._backlogged: set[uuid.UUID] = set()  # endpoints with more due than they had places for
        self.recorder = Recorder(database, settings, metrics)
        self.settings = settings
        self.secrets = secrets
        self.metrics = metrics
        self._client: aiohttp.ClientSession | None = None
        self._in_flight: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._per_endpoint: Counter[uuid.UUID] = Counter()
        self._rates = RateLimiter(settings.webhook_rate_limit_per_endpoint_per_s)
        self._resting = Resting(
            after_failures=settings.webhook_rest_after_failures, max_rest_s=settings.webhook_rest_max_s
        )
        self._gauges_at = -_GAUGES_EVERY_S

    def _http(self) -> aiohttp.ClientSession:
        # Built on first use: a client session belongs to the loop that runs it.
        if self._client is None:
            connector = aiohttp.TCPConnector(
                resolver=GuardedResolver(allow_private=self.settings.webhook_allow_private_targets),
                limit=self.settings.webhook_max_concurrency,
            )
            self._client = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=self.settings.webhook_timeout_s),
                headers={"user-agent": _USER_AGENT},
                auto_decompress=False,
            )
        return self._client

    async def run_once(self) -> bool:
        await self.count_gauges()
        free = self.settings.webhook_max_concurrency - len(self._in_flight)
        if free <= 0:
            return False
        # A place came free, but nothing was left waiting for one: no claim.
        if not self._maybe_due and monotonic() - self._looked_at < self.look_every_s:
            return False
        self._maybe_due, self._looked_at = False, monotonic()
        # Each endpoint is claimed for up to its free places; endpoints with
        # none, over their rate or resting, not at all.
        full = {e for e in self._per_endpoint if self._room(e) <= 0}
        skip = full | {e for e in self._rates.buckets if self._rates.exhausted(e)}
        skip.update(self._resting.resting())
        until = now() + lease_for(self.settings.webhook_timeout_s)
        starting: list[tuple[dict[str, Any], WebhookEndpoint]] = []
        async with self.database.session(write=True) as session, session.begin():
            repository = DispatchRepository(session)
            claimed = await repository.claim_due(
                until=until,
                limit=free,
                room=self._room,
                skip_endpoints=sorted(skip),
            )
            # Endpoints that may have more due once a place of theirs frees.
            per_endpoint = Counter(delivery["endpoint_id"] for delivery in claimed)
            self._backlogged = full | {e for e, n in per_endpoint.items() if n >= self._room(e)}
            endpoints = {e.id: e for e in await SubscribedEndpoints(session).by_ids(sorted(per_endpoint))}
            not_now = []
            for delivery in claimed:
                endpoint = endpoints.get(delivery["endpoint_id"])
                if endpoint is None or not self._rates.take(endpoint.id):
                    not_now.append(delivery["id"])
                    continue
                starting.append((delivery, endpoint))
            await repository.release(not_now, until=until)
        if not_now or len(claimed) == free:  # more are due than were started
            self._maybe_due = True
        # Only once the leases are committed: an attempt that finished before
        # would find no lease of its own to record its outcome against.
        for delivery, endpoint in starting:
            self._start(delivery, endpoint, until)
        return len(starting) == free

    def _room(self, endpoint_id: uuid.UUID) -> int:
        """Attempts the endpoint may start now: up to its cap in flight, one
        at a time while it is probed after a rest."""
        cap = 1 if self._resting.probing(endpoint_id) else self.settings.webhook_max_concurrency_per_endpoint
        return cap - self._per_endpoint.get(endpoint_id, 0)

    def deliveries_added(self) -> None:
        """New deliveries are due (the fan-out wrote them): look at the next pass."""
        self._maybe_due = True

    async def count_gauges(self) -> None:
        """Count dead letters and disabled endpoints again, at most once per
        ``_GAUGES_EVERY_S``: both are counts over whole tables."""
        if monotonic() - self._gauges_at < _GAUGES_EVERY_S:
            return
        self._gauges_at = monotonic()
        async with self.database.session(write=False) as session:
            self.metrics.dead_letters.set(await DispatchRepository(session).dead_count())
            self.metrics.endpoints_disabled.set(await SubscribedEndpoints(session).disabled_count())

    def _start(self, delivery: dict[str, Any], endpoint: WebhookEndpoint, until: datetime) -> None:
        self._per_endpoint[endpoint.id] += 1
        task = asyncio.create_task(self._deliver(delivery, endpoint, until), name=f"webhook-{delivery['id']}")
        self._in_flight[delivery["id"]] = task

        def done(_: asyncio.Task[None]) -> None:
            self._in_flight.pop(delivery["id"], None)
            self._per_endpoint[endpoint.id] -= 1
            if self._per_endpoint[endpoint.id] <= 0:
                del self._per_endpoint[endpoint.id]
            if endpoint.id in self._backlogged:
                self._maybe_due = True
            self.wake()

        task.add_done_callback(done)

    async def _deliver(self, delivery: dict[str, Any], endpoint: WebhookEndpoint, until: datetime) -> None:
        at = now()
        started = monotonic()
        try:
            outcome = await self._attempt(delivery, endpoint, at)
        except Exception as exc:  # never a task's unretrieved exception: its lease runs out, it is tried again
            _log.warning("webhook.attempt_failed", webhook_id=delivery["message_id"], error=type(exc).__name__)
            return
        if outcome.delivered:
            self._resting.succeeded(endpoint.id)
        else:
            self._resting.failed(endpoint.id)
        duration_ms = int((monotonic() - started) * 1000)
        try:
            await self.recorder.record(Finished(delivery, endpoint, until, at, duration_ms, outcome))
        except Exception as exc:  # the lease runs out and the delivery is tried again: at least once
            _log.warning("webhook.record_failed", webhook_id=delivery["message_id"], error=type(exc).__name__)

    async def _attempt(self, delivery: dict[str, Any], endpoint: WebhookEndpoint, at: datetime) -> Outcome:
        url = endpoint.url
        if literal_refused(url, allow_private=self.settings.webhook_allow_private_targets):
            return Outcome(None, "refused: the URL's address is private or reserved", None)
        try:
            secrets = signing_secrets(endpoint, self.secrets, at)
        except ValueError:  # restoring the key to KEEL_PREVIOUS_SECRET_KEYS lets the retries through
            return Outcome(None, "not sent: the signing secret was sealed with a key keel no longer has", None)
        body = delivery["body"].encode()
        headers = signing.headers(secrets, delivery["message_id"], int(at.timestamp()), body)
        headers["content-type"] = "application/json"
        try:
            async with self._http().post(url, data=body, headers=headers, allow_redirects=False) as response:
                excerpt = await response.content.read(EXCERPT_BYTES)
                retry_after = (
                    parse_retry_after(response.headers.get("retry-after"), at=now())
                    if response.status in (429, 503)
                    else None
                )
                return Outcome(response.status, None, excerpt.decode("utf-8", "replace"), retry_after)
        except TargetRefused as refused:
            return Outcome(None, f"refused: {refused}"[:200], None)
        except TimeoutError:
            return Outcome(None, f"timed out after {self.settings.webhook_timeout_s:g} s", None)
        except aiohttp.ClientError as error:
            return Outcome(None, f"connection failed: {type(error).__name__}", None)

    async def stop(self) -> None:
        """Let attempts in flight finish within the timeout; what is cut short
        keeps its lease, which runs out, and is tried again."""
        tasks = list(self._in_flight.values())
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.settings.webhook_timeout_s)
            for task in late:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*late, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = None
