"""Webhooks' retention job: delivered deliveries go after
``KEEL_WEBHOOK_RETENTION_HOURS``, their attempts with them. Dead ones stay
until an admin replays them or deletes their endpoint."""

from __future__ import annotations

from datetime import timedelta

from keel.config import Settings
from keel.core.clock import now
from keel.core.db import Database
from keel.core.jobs import PeriodicJob
from keel.core.metrics import Metrics
from keel.core.retention import BATCH, purge_in_batches
from keel.webhooks.deliveries.repository import DispatchRepository


def retention_job(settings: Settings, metrics: Metrics) -> PeriodicJob:
    keep = timedelta(hours=settings.webhooks.webhook_retention_hours)

    async def run(database: Database) -> None:
        await purge_in_batches(
            database,
            lambda session: DispatchRepository(session).purge_delivered(before=now() - keep, limit=BATCH),
            counted=metrics.retention_purged_rows.labels(table="webhook_deliveries").inc,
        )

    return PeriodicJob("webhooks.retention", timedelta(seconds=settings.worker.retention_interval_s), run)
