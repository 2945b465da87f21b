from __future__ import annotations

import logging
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr

from keel.config import (
    AuthSettings,
    Environment,
    HttpSettings,
    RateLimitSettings,
    RedisSettings,
    Settings,
    WorkerSettings,
)
from keel.core.logging import flush_log_lines
from keel.main import create_app
from tests.fixtures import routes
from tests.fixtures.databases import (
    database_settings,
    fresh_database_url,
    migrate,
    postgres_admin_url,
    redis_test_url,
)
from tests.fixtures.servers import ServerProcess, keel_test_server

# The in-process test transport runs request after request in one task without
# yielding to the event loop, which keel's loop-stall detector would read as
# overload; the detector has tests of its own.
os.environ.setdefault("KEEL_MAX_LOOP_STALL_MS", "600000")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests of a scaled-out engine run in the PostgreSQL + Redis pass only.

    The embedded-default pass has no Redis or PostgreSQL by design; those
    tests are deselected there (and counted as such), never skipped.
    """
    on_postgres = postgres_admin_url() is not None
    available = {"redis": redis_test_url() is not None, "postgres": on_postgres, "sqlite": not on_postgres}
    selected: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        needs = [name for name in available if item.get_closest_marker(name)]
        (deselected if any(not available[name] for name in needs) else selected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database for the whole run; tests use distinct data."""
    with fresh_database_url(tmp_path_factory.mktemp("db")) as url:
        migrate(url)
        yield url


@pytest.fixture
def make_settings(database_url: str) -> Callable[..., Settings]:
    """Settings for the test environment on the run's database (and Redis, if any)."""

    def build(**sections: Any) -> Settings:
        redis_url = redis_test_url()
        defaults: dict[str, Any] = {
            "env": Environment.TEST,
            "secret_key": SecretStr("test-secret-key-" + "x" * 32),
            "database": database_settings(database_url),
            # A prefix per test: Redis outlives test runs, counters must not.
            "redis": RedisSettings(
                redis_url=SecretStr(redis_url) if redis_url else None, redis_key_prefix=f"keel-test-{uuid.uuid4().hex}"
            ),
            "http": HttpSettings(),
            # Generous limits: tests register many accounts from one address.
            # The rate-limit tests set their own.
            "rate_limit": RateLimitSettings(
                rate_limit_auth="1000/minute", rate_limit_login_account="1000/minute", rate_limit_default="10000/minute"
            ),
            # Cheap hashing keeps the suite fast; the policy itself is the same.
            "auth": AuthSettings(argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1),
            # The suite shares one database, and its statement counts see the
            # engine's every statement: the worker runs where a test starts it.
            "worker": WorkerSettings(worker_in_process=False),
        }
        defaults.update(sections)
        return Settings(**defaults)

    return build


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def make_client() -> AsyncIterator[Callable[..., Any]]:
    """Start an app (lifespan included) and return an HTTP client for it."""
    managers: list[tuple[LifespanManager, httpx.AsyncClient]] = []

    async def start(app: FastAPI) -> httpx.AsyncClient:
        manager = LifespanManager(app)
        await manager.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://keel.test")
        managers.append((manager, client))
        return client

    yield start
    for manager, client in reversed(managers):
        await client.aclose()
        await manager.__aexit__(None, None, None)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings, routers=[routes.router])


@pytest.fixture
async def client(app: FastAPI, make_client: Callable[..., Any]) -> httpx.AsyncClient:
    return await make_client(app)  # type: ignore[no-any-return]


@pytest.fixture
def log_lines(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]) -> Callable[[], str]:
    """Everything logged so far, as rendered: keel's own events (written to
    stderr) and the libraries' stdlib records; not the test client's."""
    caplog.set_level(logging.INFO)
    written: list[str] = []

    def text() -> str:
        flush_log_lines()
        written.append(capsys.readouterr().err)
        libraries = (record.getMessage() for record in caplog.records if record.name != "httpx")
        return "\n".join([*written, *libraries])

    return text


@pytest.fixture
def live_server(database_url: str) -> Iterator[ServerProcess]:
    """keel with the test routes, served by uvicorn in a process of its own on the run's database."""
    process = keel_test_server({"KEEL_ENV": "test", "KEEL_DATABASE_URL": database_url})
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()
