"""Retention keeps webhook and outbox tables bounded: old delivered
deliveries go, dead ones stay, and under steady traffic the tables stop
growing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import func, select, update

from keel.config import Settings, WebhookSettings, WorkerSettings
from keel.core.clock import now
from keel.core.outbox import OutboxEvent
from keel.core.platform import platform
from keel.main import create_app
from keel.webhooks.deliveries.models import WebhookAttempt, WebhookDelivery
from keel.webhooks.retention import retention_job
from tests.fixtures.accounts import register
from tests.fixtures.databases import database_settings
from tests.fixtures.webhooks import Receiver, add_endpoint, create_task, deliveries_of, settled


async def test_retention_purges_old_delivered_deliveries_and_keeps_dead_ones(
    delivering: Callable[..., FastAPI], make_client: Callable[..., Any], receivers: Callable[..., Any]
) -> None:
    receiver = await receivers()
    app = delivering()
    client = await make_client(app)
    owner = await register(client)
    endpoint = await add_endpoint(client, owner, receiver.url)
    for n in range(3):
        await create_task(client, owner, f"kept {n}")
    old, recent, dead = await settled(app, endpoint["id"], 3)
    async with platform(app).database.session(write=True) as session, session.begin():
        long_ago = now() - timedelta(hours=200)
        await session.execute(update(WebhookDelivery).where(WebhookDelivery.id == old.id).values(finished_at=long_ago))
        await session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == dead.id).values(status="dead", finished_at=long_ago)
        )
    await retention_job(platform(app).settings, platform(app).metrics).run(platform(app).database)
    left = {d.id for d in await deliveries_of(app, endpoint["id"])}
    assert left == {recent.id, dead.id}
    async with platform(app).database.session(write=False) as session:
        orphans = await session.scalars(select(WebhookAttempt.id).where(WebhookAttempt.delivery_id == old.id))
        assert list(orphans) == []
    metrics = (await client.get("/metrics")).text
    assert 'keel_retention_purged_rows_total{table="webhook_deliveries"}' in metrics
    assert "keel_webhook_dead_letters" in metrics
    assert "keel_webhook_endpoints_disabled" in metrics


async def test_under_steady_traffic_the_tables_stop_growing(
    make_settings: Callable[..., Settings],
    make_client: Callable[..., Any],
    receivers: Callable[..., Any],
    isolated_database_url: str,
) -> None:
    receiver: Receiver = await receivers()
    one_second = 1 / 3600
    app = create_app(
        make_settings(
            database=database_settings(isolated_database_url),
            webhooks=WebhookSettings(webhook_allow_private_targets=True, webhook_retention_hours=one_second),
            worker=WorkerSettings(
                worker_poll_interval_s=0.05, retention_outbox_hours=one_second, retention_interval_s=1
            ),
        )
    )
    client = await make_client(app)
    owner = await register(client)
    await add_endpoint(client, owner, receiver.url)

    async def rows() -> int:
        async with platform(app).database.session(write=False) as session:
            events = await session.scalar(select(func.count()).select_from(OutboxEvent))
            deliveries = await session.scalar(select(func.count()).select_from(WebhookDelivery))
            attempts = await session.scalar(select(func.count()).select_from(WebhookAttempt))
            return int(events or 0) + int(deliveries or 0) + int(attempts or 0)

    per_round, sizes = 20, []
    for round_number in range(5):
        for n in range(per_round):
            await create_task(client, owner, f"steady {round_number}.{n}")
        await asyncio.sleep(1.5)  # a retention run falls in every round
        sizes.append(await rows())
    written = 5 * per_round * 3  # an event, a delivery and an attempt per task
    assert len(receiver.received) >= 5 * per_round
    # What is kept is about the last second or two of traffic, not all of it,
    # and it does not grow from round to round.
    assert sizes[-1] < written / 2, sizes
    assert max(sizes[2:]) <= 2 * max(sizes[:2]) + 3 * per_round
