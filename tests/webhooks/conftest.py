"""Fixtures of the webhook tests: receivers on 127.0.0.1, apps that deliver."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from fastapi import FastAPI

from keel.config import Settings, WebhookSettings, WorkerSettings
from keel.main import create_app
from tests.fixtures.databases import fresh_database_url, migrate
from tests.fixtures.webhooks import Handler, Receiver


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    runners: list[web.AppRunner] = []

    async def start(answer: Handler | None = None, *, port: int = 0) -> Receiver:
        receiver = Receiver(answer)
        app = web.Application()
        app.router.add_post("/hook", receiver.handle)
        runner = web.AppRunner(app, shutdown_timeout=0.5)  # a hanging handler is cut short at teardown
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        receiver.url = f"http://127.0.0.1:{port}/hook"
        return receiver

    yield start
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
def delivering(make_settings: Callable[..., Settings]) -> Callable[..., FastAPI]:
    """An app whose worker runs in process, polling often, with a fast retry
    schedule and no resting of failing endpoints."""

    def build(**webhooks: Any) -> FastAPI:
        options: dict[str, Any] = {
            "webhook_allow_private_targets": True,
            "webhook_retry_schedule_s": [0.2, 0.2],
            "webhook_timeout_s": 2.0,
            # Resting a failing endpoint has a test of its own; elsewhere it
            # would only slow the retries the tests are about.
            "webhook_rest_after_failures": 1000,
            **webhooks,
        }
        return create_app(
            make_settings(
                webhooks=WebhookSettings(**options),
                worker=WorkerSettings(worker_in_process=True, worker_poll_interval_s=0.05),
            )
        )

    return build


@pytest.fixture
def isolated_database_url(tmp_path: Path) -> Iterator[str]:
    """A migrated database of the test's own: workers started on it see only its rows."""
    with fresh_database_url(tmp_path) as url:
        migrate(url)
        yield url
