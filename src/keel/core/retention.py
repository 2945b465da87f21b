"""Core's retention job: processed outbox events and expired idempotency
records are deleted, so those tables stop growing under steady traffic.

Rows go in batches, each its own short transaction, so a large backlog never
holds SQLite's write lock (or PostgreSQL's row locks) for long.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from keel.config import WorkerSettings
from keel.core import idempotency, outbox
from keel.core.clock import now
from keel.core.db import Database
from keel.core.jobs import PeriodicJob
from keel.core.metrics import Metrics

BATCH = 1_000
Purge = Callable[[AsyncSession], Awaitable[int]]


async def purge_in_batches(database: Database, purge: Purge, *, counted: Callable[[int], None]) -> int:
    """Run ``purge`` (which deletes up to BATCH rows) until it deletes fewer; the total."""
    total = 0
    while True:
        async with database.session(write=True) as session, session.begin():
            deleted = await purge(session)
        counted(deleted)
        total += deleted
        if deleted < BATCH:
            return total


def retention_job(settings: WorkerSettings, metrics: Metrics) -> PeriodicJob:
    keep_outbox = timedelta(hours=settings.retention_outbox_hours)

    async def run(database: Database) -> None:
        purged = metrics.retention_purged_rows
        await purge_in_batches(
            database,
            lambda session: outbox.purge_processed(session, before=now() - keep_outbox, limit=BATCH),
            counted=purged.labels(table="outbox_events").inc,
        )
        await purge_in_batches(
            database,
            lambda session: idempotency.purge_expired(session, limit=BATCH),
            counted=purged.labels(table="idempotency_keys").inc,
        )

    return PeriodicJob("core.retention", timedelta(seconds=settings.retention_interval_s), run)
