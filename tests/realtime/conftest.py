"""Fixtures of the realtime tests: keel served on 127.0.0.1 by uvicorn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from keel.config import RealtimeSettings, RedisSettings, Settings, WorkerSettings
from keel.main import create_app
from tests.fixtures.realtime import Live, serve


@pytest.fixture
async def live_keel(make_settings: Callable[..., Settings]) -> AsyncIterator[Callable[..., Awaitable[Live]]]:
    """Start keel (realtime settings overridable) behind a real uvicorn server."""
    started: list[Live] = []

    async def start(*, redis: RedisSettings | None = None, **realtime: Any) -> Live:
        sections: dict[str, Any] = {"redis": redis} if redis is not None else {}
        settings = make_settings(
            realtime=RealtimeSettings(**realtime),
            worker=WorkerSettings(worker_in_process=True, worker_poll_interval_s=0.05),
            **sections,
        )
        live = await serve(create_app(settings))
        started.append(live)
        return live

    yield start
    for live in reversed(started):
        await live.stop()


@pytest.fixture
async def live(live_keel: Callable[..., Awaitable[Live]]) -> Live:
    return await live_keel()
