"""Realtime's retention job: expired events are deleted, and each stream
notes the highest seq it lost, so a client resuming from before it is told
to resync rather than handed a stream with a hole."""

from __future__ import annotations

from datetime import timedelta

from keel.config import Settings
from keel.core.clock import now
from keel.core.db import Database
from keel.core.jobs import PeriodicJob
from keel.core.metrics import Metrics
from keel.core.retention import BATCH, purge_in_batches
from keel.realtime.events.repository import StreamRepository


def retention_job(settings: Settings, metrics: Metrics) -> PeriodicJob:
    async def run(database: Database) -> None:
        await purge_in_batches(
            database,
            lambda session: StreamRepository(session).purge_expired(before=now(), limit=BATCH),
            counted=metrics.retention_purged_rows.labels(table="realtime_events").inc,
        )

    return PeriodicJob("realtime.retention", timedelta(seconds=settings.worker.retention_interval_s), run)
