"""The worker: outbox events consumed at least once and never twice at a
time, leases that run out, periodic jobs fired once across workers, retention."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import timedelta

import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import exc as sqlalchemy_exc
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keel.config import Settings, WorkerSettings
from keel.core import jobs, outbox
from keel.core.cache import Cache, MemoryCache, RedisCache
from keel.core.clock import now
from keel.core.db import Database
from keel.core.idempotency import IdempotencyRecord
from keel.core.logging import configure_logging
from keel.core.metrics import Metrics
from keel.core.outbox import OutboxEvent, OutboxMessage, emit
from keel.core.outbox_signal import CommitAnnouncer
from keel.core.retention import retention_job
from keel.core.worker import Worker
from keel.main import create_app
from tests.fixtures.databases import database_settings, redis_test_url


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_settings(database_url))
    yield db
    await db.dispose()


def shared_caches() -> tuple[Cache, Cache]:
    """Two clients of one cache: of one Redis (a prefix of the test's own) when
    the suite runs with Redis, else one in-memory cache twice."""
    url = redis_test_url()
    if url is None:
        memory = MemoryCache()
        return memory, memory
    prefix = f"keel-test-{uuid.uuid4().hex[:8]}"
    return RedisCache(url, prefix=prefix), RedisCache(url, prefix=prefix)


class Recorder:
    """Records the events of one test's own type (the suite shares its database)."""

    name = "recorder"

    def __init__(self, event_type: str, *, fail_times: int = 0, hold: asyncio.Event | None = None) -> None:
        self.event_type = event_type
        self.seen: list[uuid.UUID] = []
        self.fail_times = fail_times
        self.hold = hold
        self.started = asyncio.Event()
        self.consumed = asyncio.Event()

    async def hears(self, session: AsyncSession, event_type: str, org_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        return set(org_ids) if event_type == self.event_type else set()

    async def consume(self, session: AsyncSession, messages: Sequence[OutboxMessage]) -> None:
        mine = [message for message in messages if message.event_type == self.event_type]
        if mine:
            self.started.set()
            if self.hold is not None:
                await self.hold.wait()
            if self.fail_times:
                self.fail_times -= 1
                raise RuntimeError("the consumer failed")
            await asyncio.sleep(0)  # let a concurrent worker run between claim and mark
            self.seen.extend(message.id for message in mine)
            self.consumed.set()


def new_worker(database: Database, recorder: Recorder | None = None, **settings: object) -> Worker:
    options: dict[str, object] = {"worker_poll_interval_s": 0.05, "worker_batch_size": 50, **settings}
    worker = Worker(database, WorkerSettings(**options), Metrics(), stop_grace_s=2.0)  # type: ignore[arg-type]
    if recorder is not None:
        worker.add_consumer(recorder)
    return worker


async def emit_events(database: Database, event_type: str, count: int) -> list[uuid.UUID]:
    async with database.session(write=True) as session, session.begin():
        for index in range(count):
            await emit(session, event_type, {"n": index})
    async with database.session(write=False) as session:
        ids = await session.scalars(
            select(OutboxEvent.id).where(OutboxEvent.event_type == event_type).order_by(OutboxEvent.created_at)
        )
        return list(ids)


async def pending(database: Database, event_type: str) -> int:
    async with database.session(write=False) as session:
        count = await session.scalar(
            select(func.count()).where(OutboxEvent.event_type == event_type, OutboxEvent.processed_at.is_(None))
        )
        return int(count or 0)


async def drain(worker: Worker, *, passes: int = 50) -> None:
    for _ in range(passes):
        if not await worker.run_once():
            return


async def test_committed_events_reach_the_consumer_once_in_order(database: Database) -> None:
    event_type = f"test.worker.{uuid.uuid4().hex[:8]}"
    ids = await emit_events(database, event_type, 120)
    recorder = Recorder(event_type)
    worker = new_worker(database, recorder)
    await drain(worker)
    assert recorder.seen == ids
    assert await pending(database, event_type) == 0
    await drain(worker)  # nothing is handed over twice
    assert recorder.seen == ids


async def test_a_failing_consumer_rolls_its_batch_back_and_gets_it_again(database: Database) -> None:
    event_type = f"test.worker.{uuid.uuid4().hex[:8]}"
    ids = await emit_events(database, event_type, 3)
    recorder = Recorder(event_type, fail_times=1)
    worker = new_worker(database, recorder)
    with pytest.raises(RuntimeError):
        await worker.run_once()
    assert await pending(database, event_type) == 3  # nothing marked processed
    # run() releases the batch for a later retry; here, as it would, by hand.
    await worker._release_claimed(retry_in=timedelta(0))
    await drain(worker)
    assert recorder.seen == ids


async def test_events_a_killed_worker_held_are_claimed_again_once_its_lease_runs_out(database: Database) -> None:
    event_type = f"test.worker.{uuid.uuid4().hex[:8]}"
    ids = await emit_events(database, event_type, 5)
    # A worker claims them and dies before consuming: its lease stands.
    async with database.session(write=True) as session, session.begin():
        claimed = await outbox.claim_due(session, until=now() + timedelta(minutes=5), limit=10_000)
    assert set(ids) <= set(claimed)
    recorder = Recorder(event_type)
    await drain(new_worker(database, recorder))
    assert recorder.seen == []  # leased to the dead worker, not yet due
    async with database.session(write=True) as session, session.begin():
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.event_type == event_type)
            .values(claimed_until=now() - timedelta(seconds=1))
        )
    await drain(new_worker(database, recorder))
    assert recorder.seen == ids
    async with database.session(write=False) as session:
        attempts = await session.scalars(select(OutboxEvent.attempts).where(OutboxEvent.event_type == event_type))
        assert set(attempts) == {2}


async def test_concurrent_workers_never_hand_one_event_over_twice(database: Database) -> None:
    event_type = f"test.worker.{uuid.uuid4().hex[:8]}"
    ids = await emit_events(database, event_type, 300)
    recorders = [Recorder(event_type) for _ in range(3)]
    workers = [new_worker(database, recorder, worker_batch_size=20) for recorder in recorders]
    await asyncio.gather(*(drain(worker, passes=100) for worker in workers))
    seen = [event_id for recorder in recorders for event_id in recorder.seen]
    assert sorted(seen) == sorted(ids)  # every event, and none twice
    assert sum(1 for recorder in recorders if recorder.seen) >= 2  # the work was shared


async def test_stopping_mid_batch_gives_the_events_back(database: Database) -> None:
    event_type = f"test.worker.{uuid.uuid4().hex[:8]}"
    await emit_events(database, event_type, 4)
    hold = asyncio.Event()  # never set: the consumer hangs past the stop's grace
    recorder = Recorder(event_type, hold=hold)
    worker = new_worker(database, recorder)
    worker.stop_grace_s = 0.2
    worker.start()
    await asyncio.wait_for(recorder.started.wait(), 10)
    await worker.stop()
    async with database.session(write=False) as session:
        rows = (
            await session.execute(
                select(OutboxEvent.processed_at, OutboxEvent.claimed_until, OutboxEvent.available_at).where(
                    OutboxEvent.event_type == event_type
                )
            )
        ).all()
    assert len(rows) == 4
    assert all(row.processed_at is None and row.claimed_until is None for row in rows)
    assert all(row.available_at <= now() for row in rows)  # due again at once, for any worker
    again = Recorder(event_type)
    await drain(new_worker(database, again))
    assert len(again.seen) == 4


async def test_a_periodic_job_runs_once_per_due_time_across_workers(database: Database) -> None:
    runs: list[str] = []
    name = f"test.job.{uuid.uuid4().hex[:8]}"

    async def job_body(_: Database) -> None:
        runs.append(name)
        await asyncio.sleep(0.05)  # long enough for the other workers to look

    job = jobs.PeriodicJob(name, timedelta(hours=1), job_body)
    workers = [new_worker(database) for _ in range(3)]
    for worker in workers:
        worker.add_job(job)
        await worker._schedule(job)
    await asyncio.gather(*(worker.run_once() for worker in workers))
    await asyncio.gather(*(worker.run_once() for worker in workers))
    assert runs == [name]  # due again only in an hour
    async with database.session(write=False) as session:
        lease = await session.get(jobs.JobLease, name)
        assert lease is not None
        assert lease.leased_until is None
        assert lease.last_finished_at is not None
        assert lease.due_at > now() + timedelta(minutes=59)
    # A worker that died holding it: once the lease runs out, another runs it.
    async with database.session(write=True) as session, session.begin():
        await session.execute(
            update(jobs.JobLease)
            .where(jobs.JobLease.name == name)
            .values(due_at=now(), leased_until=now() - timedelta(seconds=1), holder="dead")
        )
    await asyncio.sleep(0.06)  # a worker looks at its jobs once a poll interval
    await workers[1].run_once()
    assert runs == [name, name]


async def test_the_lag_gauge_is_the_age_of_the_oldest_event_still_due(database: Database) -> None:
    event_type = f"test.worker.{uuid.uuid4().hex[:8]}"
    ids = await emit_events(database, event_type, 2)
    async with database.session(write=True) as session, session.begin():
        await session.execute(
            update(OutboxEvent).where(OutboxEvent.id.in_(ids)).values(available_at=now() - timedelta(hours=1))
        )
    worker = new_worker(database, Recorder(event_type), worker_batch_size=1)
    await worker.run_once()  # the first of the two: the second is still an hour due
    lag = worker.metrics.registry.get_sample_value("keel_outbox_lag_seconds")
    assert lag is not None
    assert lag >= 3600
    await drain(worker)
    await asyncio.sleep(0.06)  # a poll interval: the gauge is looked at once per interval
    await worker.run_once()
    assert (worker.metrics.registry.get_sample_value("keel_outbox_lag_seconds") or 0.0) < 60


async def test_retention_purges_old_processed_events_and_expired_idempotency_keys(database: Database) -> None:
    event_type = f"test.retention.{uuid.uuid4().hex[:8]}"
    ids = await emit_events(database, event_type, 3)
    old, recent, unprocessed = ids
    owner = f"retention-{uuid.uuid4().hex[:8]}"
    async with database.session(write=True) as session, session.begin():
        await session.execute(
            update(OutboxEvent).where(OutboxEvent.id == old).values(processed_at=now() - timedelta(hours=200))
        )
        await session.execute(
            update(OutboxEvent).where(OutboxEvent.id == recent).values(processed_at=now() - timedelta(hours=1))
        )
        for key, age in (("expired", timedelta(hours=25)), ("fresh", timedelta(hours=1))):
            session.add(
                IdempotencyRecord(
                    owner=owner, key=key, request_hash="x", status_code=201, response_body="{}", created_at=now() - age
                )
            )
    metrics = Metrics()
    job = retention_job(WorkerSettings(retention_outbox_hours=168), metrics)
    await job.run(database)
    async with database.session(write=False) as session:
        left = set(await session.scalars(select(OutboxEvent.id).where(OutboxEvent.event_type == event_type)))
        keys = set(await session.scalars(select(IdempotencyRecord.key).where(IdempotencyRecord.owner == owner)))
    assert left == {recent, unprocessed}
    assert keys == {"fresh"}
    purged = metrics.registry.get_sample_value("keel_retention_purged_rows_total", {"table": "outbox_events"})
    assert purged is not None
    assert purged >= 1


async def test_each_server_runs_the_worker_in_process_by_default(make_settings, database: Database) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(worker=WorkerSettings(worker_poll_interval_s=0.05)))
    event_type = f"test.worker.{uuid.uuid4().hex[:8]}"
    async with LifespanManager(app):
        await emit_events(database, event_type, 3)
        for _ in range(200):
            if await pending(database, event_type) == 0:
                break
            await asyncio.sleep(0.05)
        assert await pending(database, event_type) == 0
    assert WorkerSettings().worker_in_process is True


async def test_a_commit_that_wrote_events_wakes_a_worker_elsewhere_at_once(database: Database) -> None:
    """The committing side and the worker each have a cache client of their
    own, as two processes do (on Redis when the suite runs with it)."""
    event_type = f"test.worker.{uuid.uuid4().hex[:8]}"
    recorder = Recorder(event_type)
    worker = new_worker(database, recorder, worker_poll_interval_s=60)
    announcing, listening = shared_caches()
    CommitAnnouncer(announcing).watch(database.session_class)
    worker.listen(listening)
    worker.start()
    try:
        await asyncio.sleep(0.5)  # subscribed, its first pass done; the next poll is a minute away
        ids = await emit_events(database, event_type, 2)
        await asyncio.wait_for(recorder.consumed.wait(), 5)
        assert recorder.seen == ids
    finally:
        await worker.stop()
        await announcing.close()
        await listening.close()


class FailingOnce:
    """A domain's pass that raises ``error`` on its first run."""

    name = "failing-once"

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.failed = asyncio.Event()

    async def run_once(self) -> bool:
        if not self.failed.is_set():
            self.failed.set()
            raise self.error
        return False

    async def stop(self) -> None:
        return None


@pytest.mark.parametrize(
    ("error", "traced"),
    [
        (RuntimeError("a pass with a bug"), True),
        (sqlalchemy_exc.TimeoutError("no pooled connection came free"), False),
    ],
)
async def test_a_failed_pass_is_traced_when_it_is_a_bug_and_one_line_when_the_database_is_away(
    database: Database, settings: Settings, log_lines: Callable[[], str], error: Exception, traced: bool
) -> None:
    configure_logging(settings)
    worker = new_worker(database)
    failing = FailingOnce(error)
    worker.add_pass(failing)
    worker.start()
    try:
        await asyncio.wait_for(failing.failed.wait(), 10)
        await asyncio.sleep(0.1)
    finally:
        await worker.stop()
    logged = log_lines()
    assert "worker.pass_failed" in logged
    assert type(error).__name__ in logged
    assert ("Traceback" in logged) is traced
    assert (str(error) in logged) is traced  # a bug's message is in its traceback
