"""Liveness and readiness: per-check detail, 503 only for what stops keel."""

from __future__ import annotations

import httpx
import pytest
from pydantic import SecretStr

from keel.config import RedisSettings
from keel.core.platform import platform
from keel.main import create_app
from tests.fixtures.databases import database_settings

UNREACHABLE_POSTGRES = "postgresql+asyncpg://keel@127.0.0.1:1/none"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@pytest.mark.readiness("health.live")
async def test_live(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.readiness("health.ready")
async def test_ready_reports_each_check(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"] == {"status": "ok"}
    assert body["checks"]["schema"]["status"] == "ok"
    assert body["checks"]["schema"]["revision"] == body["checks"]["schema"]["head"]


@pytest.mark.readiness("health.ready_db_down")
async def test_ready_is_503_when_database_unreachable(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(create_app(make_settings(database=database_settings(UNREACHABLE_POSTGRES))))
    response = await client.get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["database"] == {"status": "error", "detail": "unreachable"}
    assert "127.0.0.1:1" not in response.text


@pytest.mark.readiness("health.ready_schema_behind")
async def test_ready_is_503_when_schema_not_at_head(app, make_client) -> None:  # type: ignore[no-untyped-def]
    platform(app).health.expected_revision = "a-newer-revision"
    client = await make_client(app)
    response = await client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["schema"]["status"] == "error"


@pytest.mark.readiness("health.redis_degraded")
async def test_ready_reports_degraded_not_down_when_redis_unreachable(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(redis=RedisSettings(redis_url=SecretStr(UNREACHABLE_REDIS), redis_timeout_s=0.2))
    client = await make_client(create_app(settings))
    response = await client.get("/health/ready")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert body["checks"]["redis"]["status"] == "degraded"
    assert body["checks"]["redis"]["fallback"] == "memory"
