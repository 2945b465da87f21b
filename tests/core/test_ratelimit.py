"""Rate limits: 429 problems with headers, keyed by client, Redis or memory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from pydantic import SecretStr

from keel.config import HttpSettings, RateLimitSettings, RedisSettings
from keel.main import create_app
from tests.fixtures import routes

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


def limited_app(make_settings, **sections):  # type: ignore[no-untyped-def]
    settings = make_settings(rate_limit=RateLimitSettings(rate_limit_auth="3/minute"), **sections)
    return create_app(settings, routers=[routes.router])


@pytest.mark.readiness("ratelimit.429")
async def test_limit_exceeded_is_429_with_headers(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(limited_app(make_settings))
    ip = {"x-forwarded-for": "ignored"}  # no trusted proxy: the header must not change the key
    remaining = []
    for _ in range(3):
        response = await client.get("/test/limited", headers=ip)
        assert response.status_code == 200
        assert response.headers["ratelimit-limit"] == "3"
        remaining.append(int(response.headers["ratelimit-remaining"]))
    assert remaining == [2, 1, 0]
    response = await client.get("/test/limited", headers={"x-forwarded-for": "198.51.100.7"})
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert 1 <= int(response.headers["retry-after"]) <= 60
    assert response.headers["ratelimit-remaining"] == "0"
    assert 0 <= int(response.headers["ratelimit-reset"]) <= 60
    assert response.json()["type"] == "urn:keel:problem:rate-limited"


@pytest.mark.readiness("ratelimit.trusted_proxy_key")
async def test_clients_behind_a_trusted_proxy_are_counted_apart(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(limited_app(make_settings, http=HttpSettings(trusted_proxies=["127.0.0.1"])))
    for _ in range(3):
        assert (await client.get("/test/limited", headers={"x-forwarded-for": "192.0.2.10"})).status_code == 200
    assert (await client.get("/test/limited", headers={"x-forwarded-for": "192.0.2.10"})).status_code == 429
    assert (await client.get("/test/limited", headers={"x-forwarded-for": "192.0.2.11"})).status_code == 200


@pytest.mark.readiness("ratelimit.off_switch")
async def test_limits_can_be_switched_off_for_load_tests(
    make_settings, make_client, log_lines: Callable[[], str]
) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(rate_limit=RateLimitSettings(rate_limits="off", rate_limit_auth="1/minute"))
    client = await make_client(create_app(settings, routers=[routes.router]))
    for _ in range(5):
        response = await client.get("/test/limited")
        assert response.status_code == 200
        assert "ratelimit-limit" not in response.headers
    assert "keel.rate_limits_off" in log_lines()


@pytest.mark.readiness("ratelimit.redis_fallback")
async def test_unreachable_redis_falls_back_to_memory_with_one_warning(
    make_settings, make_client, log_lines: Callable[[], str]
) -> None:  # type: ignore[no-untyped-def]
    app = limited_app(make_settings, redis=RedisSettings(redis_url=SecretStr(UNREACHABLE_REDIS), redis_timeout_s=0.2))
    client = await make_client(app)
    statuses = [(await client.get("/test/limited")).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert log_lines().count("ratelimit.redis_unavailable") == 1
    assert (await client.get("/health/ready")).json()["checks"]["redis"]["status"] == "degraded"


@pytest.mark.redis
@pytest.mark.readiness("ratelimit.shared_counters")
async def test_redis_counters_are_shared_between_processes(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    """Two app instances (as two processes would) draw from one Redis budget."""
    proxy = {"x-forwarded-for": "203.0.113.9"}
    settings = make_settings(
        rate_limit=RateLimitSettings(rate_limit_auth="3/minute"), http=HttpSettings(trusted_proxies=["127.0.0.1"])
    )
    first = await make_client(create_app(settings, routers=[routes.router]))
    second = await make_client(create_app(settings, routers=[routes.router]))
    responses = [await client.get("/test/limited", headers=proxy) for client in (first, second, first)]
    assert [response.status_code for response in responses] == [200, 200, 200]
    assert [response.headers["ratelimit-remaining"] for response in responses] == ["2", "1", "0"]
    refused = await second.get("/test/limited", headers=proxy)
    assert refused.status_code == 429
    # The window is the one the first process opened, not a fresh minute of the second's.
    resets = [int(response.headers["ratelimit-reset"]) for response in (*responses, refused)]
    assert max(resets) - min(resets) <= 1


@pytest.mark.readiness("ratelimit.window_rollover")
async def test_a_new_window_restores_the_budget_and_its_reset(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(rate_limit=RateLimitSettings(rate_limit_auth="2/second")), routers=[routes.router])
    client = await make_client(app)
    statuses = [(await client.get("/test/limited")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    await asyncio.sleep(1.1)
    response = await client.get("/test/limited")
    assert response.status_code == 200
    assert response.headers["ratelimit-remaining"] == "1"
    assert int(response.headers["ratelimit-reset"]) == 1
