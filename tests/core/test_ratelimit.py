"""Rate limits: 429 problems with headers, keyed by client, Redis or memory."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import select

from keel.config import HttpSettings, RateLimitSettings, RedisSettings, Settings
from keel.core.accelerators.quota_leases import MAX_LEASE
from keel.core.platform import platform
from keel.core.ratelimit import RateLimiter
from keel.main import create_app
from keel.work.tasks.models import Task
from tests.fixtures import routes
from tests.fixtures.accounts import API, register
from tests.fixtures.databases import redis_test_url
from tests.fixtures.gated_redis import GatedRedis, gated_redis
from tests.fixtures.locks import user_row_locked
from tests.fixtures.relay import relay_to
from tests.fixtures.silent_redis import silent_redis
from tests.fixtures.statements import executed_statements

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"
_RETRY_AFTER_S = 5.0  # keel.core.ratelimit waits this long before trying Redis again


def limited_app(make_settings: Callable[..., Settings], **sections: Any) -> FastAPI:
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
    make_settings: Callable[..., Settings], make_client: Callable[..., Any], log_lines: Callable[[], str]
) -> None:
    settings = make_settings(rate_limit=RateLimitSettings(rate_limits="off", rate_limit_auth="1/minute"))
    client = await make_client(create_app(settings, routers=[routes.router]))
    for _ in range(5):
        response = await client.get("/test/limited")
        assert response.status_code == 200
        assert "ratelimit-limit" not in response.headers
    assert "keel.rate_limits_off" in log_lines()


@pytest.mark.readiness("ratelimit.redis_fallback")
async def test_unreachable_redis_falls_back_to_memory_with_one_warning(
    make_settings: Callable[..., Settings], make_client: Callable[..., Any], log_lines: Callable[[], str]
) -> None:
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


@pytest.mark.readiness("ratelimit.redis_fallback")
async def test_a_redis_that_stops_answering_falls_back_to_memory() -> None:
    settings = RateLimitSettings(rate_limit_auth="2/minute")
    async with silent_redis() as (port, received):
        limiter = RateLimiter(settings, redis_url=f"redis://127.0.0.1:{port}/0", redis_timeout_s=0.2)
        try:
            decisions = [await limiter.hit("auth", "ip:192.0.2.1") for _ in range(3)]
        finally:
            await limiter.close()
    assert received, "the count was sent to Redis first"
    assert [decision.allowed for decision in decisions] == [True, True, False]
    assert limiter.degraded


@pytest.mark.redis
async def test_redis_counts_survive_a_script_flush_and_expire_with_their_window() -> None:
    url = redis_test_url()
    assert url is not None
    prefix = f"keel-test-{uuid.uuid4().hex}"
    limiter = RateLimiter(RateLimitSettings(rate_limit_auth="5/minute"), redis_url=url, redis_key_prefix=prefix)
    key = f"{prefix}:limits:" + limiter.groups["auth"].key_for("auth", "ip:192.0.2.2")
    admin = Redis.from_url(url)
    try:
        assert [(await limiter.hit("auth", "ip:192.0.2.2")).remaining for _ in range(2)] == [4, 3]
        await admin.script_flush()  # a restarted Redis forgets its scripts
        assert (await limiter.hit("auth", "ip:192.0.2.2")).remaining == 2
        assert int(await admin.get(key) or 0) == 3
        assert 0 < await admin.ttl(key) <= 60
        assert not limiter.degraded
    finally:
        await admin.delete(key)
        await admin.aclose()
        await limiter.close()


@pytest.mark.redis
async def test_a_burst_on_one_budget_is_counted_exactly() -> None:
    """Fifty counts at once on a fresh window (one lease being fetched, the
    others counting a unit each): all admitted, and the budget left after
    them is exact."""
    url = redis_test_url()
    assert url is not None
    limiter = RateLimiter(
        RateLimitSettings(rate_limit_auth="100/minute"), redis_url=url, redis_key_prefix=f"keel-test-{uuid.uuid4().hex}"
    )
    try:
        assert (await limiter.hit("auth", "ip:192.0.2.3")).remaining == 99
        decisions = await asyncio.gather(*(limiter.hit("auth", "ip:192.0.2.3") for _ in range(50)))
        after = await limiter.hit("auth", "ip:192.0.2.3")
    finally:
        await limiter.close()
    assert all(decision.allowed for decision in decisions)
    assert after.remaining == 100 - 52


@pytest.mark.redis
async def test_each_subject_is_counted_in_its_own_window() -> None:
    """Counts for several callers at once: each key counted apart, and each
    new window given its expiry."""
    url = redis_test_url()
    assert url is not None
    prefix = f"keel-test-{uuid.uuid4().hex}"
    limiter = RateLimiter(RateLimitSettings(rate_limit_auth="5/minute"), redis_url=url, redis_key_prefix=prefix)
    subjects = ["ip:192.0.2.4", "ip:192.0.2.5", "ip:192.0.2.4"]
    admin = Redis.from_url(url)
    keys = [f"{prefix}:limits:" + limiter.groups["auth"].key_for("auth", subject) for subject in subjects[:2]]
    try:
        decisions = await asyncio.gather(*(limiter.hit("auth", subject) for subject in subjects))
        assert sorted(d.remaining for d, s in zip(decisions, subjects, strict=True) if s == subjects[0]) == [3, 4]
        assert decisions[1].remaining == 4
        assert [int(await admin.get(key) or 0) for key in keys] == [2, 1]
        assert all(0 < ttl <= 60 for ttl in [await admin.ttl(key) for key in keys])
    finally:
        await admin.delete(*keys)
        await admin.aclose()
        await limiter.close()


@contextlib.asynccontextmanager
async def _limiter_through_relay(budget: str) -> AsyncIterator[tuple[RateLimiter, GatedRedis, str]]:
    """A limiter allowing ``budget`` for the auth group, on Redis through a
    relay that counts the scripts sent, with a key prefix of its own."""
    url = redis_test_url()
    assert url is not None
    prefix = f"keel-test-{uuid.uuid4().hex}"
    async with gated_redis(url) as relay:
        limiter = RateLimiter(RateLimitSettings(rate_limit_auth=budget), redis_url=relay.url, redis_key_prefix=prefix)
        try:
            yield limiter, relay, prefix
        finally:
            await limiter.close()


@pytest.mark.redis
async def test_a_large_budget_is_drawn_from_redis_in_leases() -> None:
    admin = Redis.from_url(redis_test_url() or "")
    async with _limiter_through_relay("1000/minute") as (limiter, relay, prefix):
        key = f"{prefix}:limits:" + limiter.groups["auth"].key_for("auth", "ip:192.0.2.8")
        try:
            decisions = [await limiter.hit("auth", "ip:192.0.2.8") for _ in range(200)]
            counted = int(await admin.get(key) or 0)
        finally:
            await admin.delete(key)
            await admin.aclose()
    assert all(decision.allowed for decision in decisions)
    assert [decision.remaining for decision in decisions] == list(range(999, 799, -1))
    assert relay.scripts_sent <= 12  # leases of 1, 2, 4, … 64, not 200 counts
    assert 200 <= counted <= 200 + MAX_LEASE  # what was leased, used or not


@pytest.mark.redis
async def test_requests_arriving_while_a_lease_is_fetched_wait_for_it() -> None:
    async with _limiter_through_relay("100000/minute") as (limiter, relay, _):
        for _ in range(200):  # leases grow to their largest
            await limiter.hit("auth", "ip:192.0.2.10")
        sent = relay.scripts_sent
        bursts = [await asyncio.gather(*(limiter.hit("auth", "ip:192.0.2.10") for _ in range(40))) for _ in range(5)]
        during_bursts = relay.scripts_sent - sent
    assert all(decision.allowed for burst in bursts for decision in burst)
    assert during_bursts <= 5  # 200 requests: a few leases of 64, not a count each


@pytest.mark.redis
async def test_requests_waiting_for_a_lease_redis_never_answers_fall_back_to_memory() -> None:
    url = redis_test_url()
    assert url is not None
    target = urlsplit(url)
    async with relay_to(target.hostname or "127.0.0.1", target.port or 6379) as relay:
        limiter = RateLimiter(
            RateLimitSettings(rate_limit_auth="100000/minute"),
            redis_url=urlunsplit(target._replace(netloc=f"127.0.0.1:{relay.port}")),
            redis_key_prefix=f"keel-test-{uuid.uuid4().hex}",
            redis_timeout_s=0.3,
        )
        try:
            for _ in range(200):  # leases grow to their largest
                await limiter.hit("auth", "ip:192.0.2.11")
            relay.cut()
            decisions = await asyncio.wait_for(
                asyncio.gather(*(limiter.hit("auth", "ip:192.0.2.11") for _ in range(100))), timeout=5
            )
        finally:
            await limiter.close()
    assert all(decision.allowed for decision in decisions)
    assert limiter.degraded


@pytest.mark.redis
async def test_processes_drawing_leases_never_admit_more_than_the_budget() -> None:
    """Two limiters (as two processes would) on one budget, hit in turns and
    together until both refuse: the budget is admitted exactly once over,
    and a spent budget is refused without asking Redis."""
    url = redis_test_url()
    assert url is not None
    prefix = f"keel-test-{uuid.uuid4().hex}"
    settings = RateLimitSettings(rate_limit_auth="500/minute")
    async with gated_redis(url) as relay:
        limiters = [RateLimiter(settings, redis_url=relay.url, redis_key_prefix=prefix) for _ in range(2)]
        key = f"{prefix}:limits:" + limiters[0].groups["auth"].key_for("auth", "ip:192.0.2.9")
        admin = Redis.from_url(url)
        try:
            admitted = 0
            for round_ in range(200):  # ~800 hits
                hits = [limiters[(round_ + n) % 2].hit("auth", "ip:192.0.2.9") for n in range(1 + round_ % 7)]
                admitted += sum(decision.allowed for decision in await asyncio.gather(*hits))
            sent = relay.scripts_sent
            refused = [await limiter.hit("auth", "ip:192.0.2.9") for limiter in limiters for _ in range(5)]
            assert relay.scripts_sent == sent
        finally:
            await admin.delete(key)
            await admin.aclose()
            for limiter in limiters:
                await limiter.close()
    assert admitted == 500
    assert not any(decision.allowed for decision in refused)
    assert {decision.remaining for decision in refused} == {0}


@dataclass
class _Gated:
    app: FastAPI
    client: httpx.AsyncClient
    redis: GatedRedis


@pytest.fixture
async def gated(make_settings, make_client) -> AsyncIterator[_Gated]:  # type: ignore[no-untyped-def]
    """An app limiting the auth and default groups to 20 and 30 a minute on
    Redis, through a gated relay: budgets small enough to be counted one
    request at a time (no leases)."""
    url = redis_test_url()
    assert url is not None
    async with gated_redis(url) as redis:
        settings = make_settings(
            rate_limit=RateLimitSettings(rate_limit_auth="20/minute", rate_limit_default="30/minute"),
            redis=RedisSettings(redis_url=SecretStr(redis.url), redis_key_prefix=f"keel-test-{uuid.uuid4().hex}"),
        )
        app = create_app(settings, routers=[routes.router])
        yield _Gated(app, await make_client(app), redis)


@pytest.mark.redis
@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_a_request_is_counted_before_its_work(gated: _Gated, method: str) -> None:
    path = "/test/limited-read" if method == "GET" else "/test/limited-write"
    assert (await gated.client.request(method, path)).status_code == 200
    gated.redis.events.clear()
    gated.app.state.work_probe = lambda: gated.redis.events.append("work")
    response = await gated.client.request(method, path)
    assert response.status_code == 200
    assert gated.redis.events == ["count reply", "work"]
    assert response.headers["ratelimit-remaining"] == "18"


@pytest.mark.redis
async def test_a_write_is_counted_before_its_caller_is_looked_up(gated: _Gated, database_url: str) -> None:
    account = await register(gated.client)
    tasks = f"{API}/orgs/{account.personal_org_id}/tasks"
    first = await gated.client.post(tasks, json={"title": "first"}, headers=account.headers)
    assert first.status_code == 201
    sent = gated.redis.scripts_sent
    async with user_row_locked(database_url, account.id):  # the caller's lookup waits here
        writing = asyncio.ensure_future(gated.client.post(tasks, json={"title": "second"}, headers=account.headers))
        for _ in range(500):
            if gated.redis.scripts_sent > sent:
                break
            await asyncio.sleep(0.01)
        assert gated.redis.scripts_sent > sent  # counted before the lookup
        assert not writing.done()
    response = await writing
    assert response.status_code == 201
    assert int(response.headers["ratelimit-remaining"]) == int(first.headers["ratelimit-remaining"]) - 1


async def _account_limited_to(make_settings, make_client, default: str):  # type: ignore[no-untyped-def]
    """(app, client, a registered account, its tasks path), the account's
    default budget ``default``, of which registering (reading /me) spent one."""
    app = create_app(make_settings(rate_limit=RateLimitSettings(rate_limit_default=default)))
    client = await make_client(app)
    account = await register(client)
    return app, client, account, f"{API}/orgs/{account.personal_org_id}/tasks"


async def test_a_refused_write_changes_nothing(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    app, client, account, tasks = await _account_limited_to(make_settings, make_client, "3/minute")
    responses = [await client.post(tasks, json={"title": f"t{n}"}, headers=account.headers) for n in range(3)]
    assert [response.status_code for response in responses] == [201, 201, 429]
    # A create (answered with a response of its own, for Idempotency-Key) carries the headers too.
    assert [response.headers["ratelimit-remaining"] for response in responses] == ["1", "0", "0"]
    async with platform(app).database.session(write=False) as session:
        titles = await session.scalars(select(Task.title).where(Task.org_id == uuid.UUID(account.personal_org_id)))
        assert sorted(titles) == ["t0", "t1"]


@pytest.mark.redis
async def test_concurrent_reads_are_counted_exactly(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(rate_limit=RateLimitSettings(rate_limit_auth="20/minute"))
    client = await make_client(create_app(settings, routers=[routes.router]))
    assert (await client.get("/test/limited-read")).status_code == 200
    responses = await asyncio.gather(*(client.get("/test/limited-read") for _ in range(30)))
    assert sorted(response.status_code for response in responses) == [200] * 19 + [429] * 11
    remaining = sorted(int(r.headers["ratelimit-remaining"]) for r in responses if r.status_code == 200)
    assert remaining == list(range(19))


@pytest.mark.redis
async def test_a_read_refused_by_a_budget_another_process_spent_does_no_work(  # type: ignore[no-untyped-def]
    make_settings, make_client
) -> None:
    settings = make_settings(rate_limit=RateLimitSettings(rate_limit_auth="20/minute"))
    this = create_app(settings, routers=[routes.router])
    this_client = await make_client(this)
    other_client = await make_client(create_app(settings, routers=[routes.router]))
    assert (await this_client.get("/test/limited-read")).headers["ratelimit-remaining"] == "19"
    for _ in range(19):
        assert (await other_client.get("/test/limited-read")).status_code == 200
    worked: list[str] = []
    this.state.work_probe = lambda: worked.append("work")
    refused = await this_client.get("/test/limited-read")
    assert worked == []
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert int(refused.headers["retry-after"]) >= 1


@pytest.mark.readiness("ratelimit.refused_before_sql")
async def test_a_refused_authenticated_request_runs_no_sql(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    app, client, account, tasks = await _account_limited_to(make_settings, make_client, "2/minute")
    assert (await client.get(tasks, headers=account.headers)).status_code == 200
    async with executed_statements(app) as statements:
        refused_read = await client.get(tasks, headers=account.headers)
        refused_write = await client.post(tasks, json={"title": "no"}, headers=account.headers)
    assert (refused_read.status_code, refused_write.status_code) == (429, 429)
    assert statements == []


@pytest.mark.redis
async def test_a_read_cancelled_by_its_deadline_is_still_counted(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        rate_limit=RateLimitSettings(rate_limit_auth="20/minute"), http=HttpSettings(request_timeout_s=0.3)
    )
    app = create_app(settings, routers=[routes.router])
    client = await make_client(app)
    assert (await client.get("/test/limited-read")).headers["ratelimit-remaining"] == "19"
    app.state.work_probe = lambda: asyncio.sleep(5)
    assert (await client.get("/test/limited-read")).status_code == 504
    app.state.work_probe = None
    # The cancelled read was counted before its work began.
    assert (await client.get("/test/limited-read")).headers["ratelimit-remaining"] == "17"


@pytest.mark.redis
@pytest.mark.readiness("ratelimit.redis_fallback")
async def test_a_redis_outage_logs_one_warning_and_one_recovery_line(log_lines: Callable[[], str]) -> None:
    url = redis_test_url()
    assert url is not None
    target = urlsplit(url)
    async with relay_to(target.hostname or "127.0.0.1", target.port or 6379) as relay:
        through_relay = urlunsplit(target._replace(netloc=f"127.0.0.1:{relay.port}"))
        limiter = RateLimiter(
            RateLimitSettings(rate_limit_auth="100/minute"),
            redis_url=through_relay,
            redis_key_prefix=f"keel-test-{uuid.uuid4().hex}",
            redis_timeout_s=0.3,
        )
        try:
            assert (await limiter.hit("auth", "ip:192.0.2.7")).allowed
            relay.cut()
            for _ in range(5):  # several counts during the outage, and past a retry of Redis
                assert (await limiter.hit("auth", "ip:192.0.2.7")).allowed
            assert limiter.degraded
            await asyncio.sleep(_RETRY_AFTER_S + 0.2)
            assert (await limiter.hit("auth", "ip:192.0.2.7")).allowed  # Redis tried again: still down
            relay.restore()
            await asyncio.sleep(_RETRY_AFTER_S + 0.2)
            assert (await limiter.hit("auth", "ip:192.0.2.7")).allowed
            assert not limiter.degraded
        finally:
            await limiter.close()
    logged = log_lines()
    assert logged.count("ratelimit.redis_unavailable") == 1
    assert logged.count("ratelimit.redis_recovered") == 1
