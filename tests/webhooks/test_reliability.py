"""Webhook delivery survives its process being killed: real keel processes,
a real receiver on 127.0.0.1, SIGKILL in the middle of a burst."""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import func, select

from keel.core.clock import now
from keel.core.db import Database
from keel.core.outbox import OutboxEvent
from keel.identity.orgs.models import Organization
from keel.webhooks.deliveries.models import WebhookDelivery
from keel.webhooks.endpoints.models import WebhookEndpoint
from keel.webhooks.secret_box import SecretBox
from keel.webhooks.signing import new_signing_secret
from tests.fixtures.databases import database_settings
from tests.fixtures.servers import REPO_ROOT, ServerProcess
from tests.fixtures.waiting import eventually

BURST = 1_000
SECRET_KEY = "reliability-secret-key-" + "r" * 32


class Receiver:
    def __init__(self) -> None:
        self.ids: Counter[str] = Counter()
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.ids[request.headers["webhook-id"]] += 1
        return web.Response(status=204)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    app = web.Application()
    app.router.add_post("/hook", found.handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    found.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    yield found
    await runner.cleanup()


async def seed_burst(database: Database, url: str) -> set[str]:
    """An org with one endpoint, and a burst of committed events for it; their webhook-ids."""
    org_id = uuid.uuid4()
    box = SecretBox(SecretStr(SECRET_KEY))
    async with database.session(write=True) as session, session.begin():
        session.add(Organization(id=org_id, name="Burst"))
        await session.flush()
        session.add(WebhookEndpoint(org_id=org_id, url=url, secret_sealed=box.seal(new_signing_secret())))
        for n in range(BURST):
            session.add(
                OutboxEvent(
                    org_id=org_id, event_type="task.created", payload={"n": n}, created_at=now(), available_at=now()
                )
            )
    async with database.session(write=False) as session:
        ids = await session.scalars(select(OutboxEvent.id).where(OutboxEvent.org_id == org_id))
        return {f"msg_{event_id.hex}" for event_id in ids}


async def mid_burst(receiver: Receiver) -> bool:
    return sum(receiver.ids.values()) >= BURST // 5


async def all_delivered(database: Database, receiver: Receiver, expected: set[str]) -> bool:
    if set(receiver.ids) != expected:
        return False
    async with database.session(write=False) as session:
        pending = await session.scalar(select(func.count()).where(WebhookDelivery.status != "delivered"))
        unconsumed = await session.scalar(select(func.count()).where(OutboxEvent.processed_at.is_(None)))
        return not pending and not unconsumed


def start(command: str, database_url: str) -> ServerProcess:
    env = {
        "KEEL_ENV": "test",
        "KEEL_SECRET_KEY": SECRET_KEY,
        "KEEL_DATABASE_URL": database_url,
        "KEEL_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
        "KEEL_WEBHOOK_TIMEOUT_S": "1",
        "KEEL_WORKER_LEASE_S": "1",
        "KEEL_WORKER_POLL_INTERVAL_S": "0.1",
        "KEEL_WEBHOOK_RATE_LIMIT_PER_ENDPOINT_PER_S": "100000",
        "KEEL_WEBHOOK_MAX_CONCURRENCY_PER_ENDPOINT": "32",
        "KEEL_LOG_LEVEL": "WARNING",
    }
    return ServerProcess([sys.executable, "-m", "keel.cli", command], env, cwd=REPO_ROOT)


@pytest.mark.parametrize("command", ["worker", "serve"])
async def test_a_process_killed_mid_burst_loses_nothing(
    command: str, isolated_database_url: str, receiver: Receiver
) -> None:
    database = Database(database_settings(isolated_database_url))
    try:
        expected = await seed_burst(database, receiver.url)
        first = start(command, isolated_database_url)
        try:
            assert await eventually(lambda: mid_burst(receiver), within_s=60, every_s=0.01)
        finally:
            os.kill(first.process.pid, signal.SIGKILL)
            first.process.wait()
            first.output.close()
        assert len(receiver.ids) < BURST  # killed in the middle, not after
        second = start(command, isolated_database_url)
        try:
            assert await eventually(lambda: all_delivered(database, receiver, expected), within_s=90, every_s=0.1)
        finally:
            second.stop()
        # Every event arrived; one sent twice (in flight at the kill) kept its webhook-id.
        assert set(receiver.ids) == expected
        assert sum(receiver.ids.values()) < BURST + 200  # duplicates only from the kill
    finally:
        await database.dispose()
