"""The worker: hands committed outbox events to their consumers, and runs the
periodic jobs.

Each pass claims a batch of due events with a lease (one transaction), then
consumes it in another: the events still leased to this worker are marked
processed there, and every consumer writes what it derives from them in the
same transaction, so an event is consumed completely or not at all. A
consumer that fails rolls the batch back and the events come due again
after a pause; a worker killed between the two leaves leases that run out,
and any worker claims those events again. Delivery is therefore at least
once, never lost.

Domains plug in through :meth:`Worker.add_consumer` and :meth:`Worker.add_job`.
It runs in each ``keel serve`` process by default (``KEEL_WORKER_IN_PROCESS``)
and alone under ``keel worker``; any number of workers can share a database.
Committed events wake every worker through the cache's pub/sub
(``outbox_signal``); without that message a worker finds them at its next
poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from math import inf
from typing import Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keel.config import WorkerSettings
from keel.core import jobs, outbox
from keel.core.cache import Cache
from keel.core.clock import monotonic, now
from keel.core.db import Database
from keel.core.errors import database_away
from keel.core.logging import get_logger
from keel.core.metrics import Metrics
from keel.core.outbox import OutboxMessage
from keel.core.outbox_signal import CHANNEL

_log = get_logger("keel.worker")
# After a failed pass (a consumer raised, the database is away), before the next.
_RETRY_AFTER_FAILURE = timedelta(seconds=5)


class OutboxConsumer(Protocol):
    """Derives work from committed events (webhook deliveries, realtime fan-out)."""

    name: str

    async def consume(self, session: AsyncSession, messages: Sequence[OutboxMessage]) -> None:
        """Write what ``messages`` call for, in ``session``'s transaction; raise to retry them later."""

    async def hears(self, session: AsyncSession, event_type: str, org_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Of these orgs, those whose events of ``event_type`` it would act on
        now (an emitter of many events writes only those: ``Worker.heard_in``)."""


class WorkerPass(Protocol):
    """Work of a domain's own that the worker drives on each pass (the webhook
    dispatcher); it must return quickly, starting longer work in tasks it owns."""

    name: str

    async def run_once(self) -> bool:
        """Do what is due now; True when more is waiting (the worker then skips its pause)."""

    async def stop(self) -> None:
        """Finish or give back what is in flight; the worker is stopping."""


class Worker:
    def __init__(
        self, database: Database, settings: WorkerSettings, metrics: Metrics, *, stop_grace_s: float = 10.0
    ) -> None:
        """``stop_grace_s``: how long a stopping worker lets its current pass finish."""
        self.database = database
        self.stop_grace_s = stop_grace_s
        self.settings = settings
        self.metrics = metrics
        self.consumers: list[OutboxConsumer] = []
        self.jobs: list[jobs.PeriodicJob] = []
        self.passes: list[WorkerPass] = []
        self.holder = f"{socket.gethostname()[:40]}-{secrets.token_hex(4)}"
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._scheduled: set[str] = set()
        self._claimed: list[uuid.UUID] = []
        self._claimed_until: datetime | None = None
        self._last_done: dict[str, float] = {}
        self._events_may_wait = True
        self._announcements: Cache | None = None
        self._listener: asyncio.Task[None] | None = None

    def add_consumer(self, consumer: OutboxConsumer) -> None:
        self.consumers.append(consumer)

    async def heard_in(self, session: AsyncSession, event_type: str, org_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """The orgs among ``org_ids`` whose ``event_type`` events some consumer
        would act on, asked in the emitter's transaction. For events emitted
        by the thousand (a device's), an event nobody hears is not written:
        its row, its claim and its consumption would come to nothing."""
        heard: set[uuid.UUID] = set()
        for consumer in self.consumers:
            heard |= await consumer.hears(session, event_type, org_ids)
        return heard

    def add_job(self, job: jobs.PeriodicJob) -> None:
        self.jobs.append(job)

    def add_pass(self, worker_pass: WorkerPass) -> None:
        self.passes.append(worker_pass)

    def wake(self) -> None:
        """Look for due events now rather than at the next poll."""
        self._events_may_wait = True
        self._wake.set()

    def wake_passes(self) -> None:
        """Run the domains' passes now (a place came free); events are looked
        for at the next poll, unless something woke the worker for them."""
        self._wake.set()

    def listen(self, cache: Cache) -> None:
        """Wake when any process announces committed events on ``cache`` (``outbox_signal``)."""
        self._announcements = cache

    # -- running ---------------------------------------------------------------

    def start(self) -> None:
        self._stopping.clear()
        self._task = asyncio.create_task(self.run(), name="keel-worker")
        if self._announcements is not None:
            self._listener = asyncio.create_task(self._listen(self._announcements), name="keel-worker-listen")

    async def stop(self) -> None:
        """Let the current pass finish (or cancel it after a grace period),
        then give back any events still claimed."""
        self._stopping.set()
        self._wake.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(TimeoutError):  # past the grace, wait_for cancels it
                await asyncio.wait_for(task, self.stop_grace_s)
        await self._release_claimed(retry_in=timedelta(0))
        for worker_pass in self.passes:
            try:
                await worker_pass.stop()
            except Exception as exc:  # one pass's failure must not keep the others from stopping
                _log.warning("worker.pass_stop_failed", worker_pass=worker_pass.name, error=type(exc).__name__)

    async def run(self) -> None:
        """Passes until stopped; an idle worker waits a poll interval between them."""
        while not self._stopping.is_set():
            busy = False
            # Cleared before the pass, so a wake-up during it starts the next one at once.
            self._wake.clear()
            try:
                busy = await self.run_once()
            except Exception as exc:  # a pass never kills the worker: it logs and pauses
                _log_failure("worker.pass_failed", exc)
                await self._release_claimed(retry_in=_RETRY_AFTER_FAILURE)
                await self._pause(_RETRY_AFTER_FAILURE.total_seconds())
                continue
            if not busy:
                await self._pause(self.settings.worker_poll_interval_s)

    async def _listen(self, cache: Cache) -> None:
        failing = False
        while not self._stopping.is_set():
            try:
                async with cache.subscribe(CHANNEL) as announcements:
                    failing = False
                    self.wake()  # for whatever was announced while nobody listened
                    async for _ in announcements:
                        self.wake()
            except Exception as exc:  # the cache is away: the worker polls meanwhile
                if not failing:
                    _log.warning("worker.listen_failed", error=type(exc).__name__)
                failing = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), _RETRY_AFTER_FAILURE.total_seconds())

    async def _pause(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), seconds)

    async def run_once(self) -> bool:
        """One pass: due jobs, one batch of events, then each domain's pass.
        True when more may be waiting."""
        # Jobs are due hours apart: looking once a poll interval is soon enough,
        # and spares a busy worker a transaction per job on every pass.
        if self._once_a_poll("jobs"):
            for job in self.jobs:
                if self._stopping.is_set():
                    return False
                await self._run_job_if_due(job)
        busy = False
        if self._events_may_wait or self._once_a_poll("events"):
            self._events_may_wait = False  # a wake-up from here on counts again
            busy = await self._consume_batch()
            self._events_may_wait = self._events_may_wait or busy
        for worker_pass in self.passes:
            if self._stopping.is_set():
                return False
            busy = await worker_pass.run_once() or busy
        return busy

    # -- events ----------------------------------------------------------------

    async def _consume_batch(self) -> bool:
        limit = self.settings.worker_batch_size
        until = now() + timedelta(seconds=self.settings.worker_lease_s)
        async with self.database.session(write=True) as session, session.begin():
            ids = await outbox.claim_due(session, until=until, limit=limit)
        self._claimed, self._claimed_until = ids, until
        if ids:
            started = monotonic()
            async with self.database.session(write=True) as session, session.begin():
                messages = await outbox.take_claimed(session, ids, until=until)
                for consumer in self.consumers:
                    await consumer.consume(session, messages)
            self._claimed, self._claimed_until = [], None
            self.metrics.outbox_processed.inc(len(messages))
            _log.debug("worker.batch", events=len(messages), seconds=round(monotonic() - started, 4))
        if self._once_a_poll("lag"):
            await self._observe_lag()
        return len(ids) == limit

    def _once_a_poll(self, what: str) -> bool:
        """True at the first call for ``what`` and then once per poll interval."""
        at = monotonic()
        if at - self._last_done.get(what, -inf) < self.settings.worker_poll_interval_s:
            return False
        self._last_done[what] = at
        return True

    async def _observe_lag(self) -> None:
        async with self.database.session(write=False) as session:
            oldest = await outbox.oldest_due_at(session)
        lag = max((now() - oldest).total_seconds(), 0.0) if oldest is not None else 0.0
        self.metrics.outbox_lag_seconds.set(lag)

    async def _release_claimed(self, *, retry_in: timedelta) -> None:
        ids, until = self._claimed, self._claimed_until
        self._claimed, self._claimed_until = [], None
        if not ids or until is None:
            return
        try:
            async with self.database.session(write=True) as session, session.begin():
                released = await outbox.release(session, ids, until=until, retry_in=retry_in)
        except Exception as exc:  # the leases run out by themselves
            _log.warning("worker.release_failed", events=len(ids), error=type(exc).__name__)
            return
        if released:
            _log.info("worker.released", events=released)

    # -- periodic jobs ---------------------------------------------------------

    async def _schedule(self, job: jobs.PeriodicJob) -> None:
        try:
            async with self.database.session(write=True) as session, session.begin():
                await jobs.ensure_scheduled(session, job)
        except IntegrityError:
            pass  # another worker scheduled it first
        self._scheduled.add(job.name)

    async def _run_job_if_due(self, job: jobs.PeriodicJob) -> None:
        if job.name not in self._scheduled:  # at the first pass, or after it failed (database away)
            await self._schedule(job)
        async with self.database.session(write=True) as session, session.begin():
            until = await jobs.take_if_due(session, job, holder=self.holder)
        if until is None:
            return
        started = monotonic()
        try:
            await job.run(self.database)
        except Exception as exc:  # the next run is scheduled all the same
            _log_failure("worker.job_failed", exc, job=job.name)
            self.metrics.job_runs.labels(job=job.name, outcome="failed").inc()
        else:
            _log.info("worker.job_ran", job=job.name, seconds=round(monotonic() - started, 3))
            self.metrics.job_runs.labels(job=job.name, outcome="ok").inc()
        finally:
            async with self.database.session(write=True) as session, session.begin():
                await jobs.finish(session, job, holder=self.holder, until=until)


def _log_failure(event: str, exc: Exception, **fields: str) -> None:
    """One warning line when the database is busy or away (it comes back by
    itself); any other error is a bug, logged with its traceback for whoever
    fixes it (statement parameters and frame locals never appear in one)."""
    if database_away(exc):
        _log.warning(event, error=type(exc).__name__, **fields)
    else:
        _log.exception(event, error=type(exc).__name__, **fields)
