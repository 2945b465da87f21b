"""A database that is down, restarting or misconfigured answers 503 problems
with Retry-After, never a 500 or a traceback, and keel recovers by itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.engine import make_url

from keel.config import DatabaseSettings
from keel.main import create_app
from tests.fixtures import routes
from tests.fixtures.accounts import API, PASSWORD, register
from tests.fixtures.relay import relay_to

PROBLEM = "application/problem+json"


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["retry-after"] == "1"
    assert "Traceback" not in response.text


@pytest.mark.postgres
@pytest.mark.readiness("db.outage_is_503")
async def test_a_lost_database_answers_503_and_recovery_needs_no_restart(
    make_settings: Callable[..., Any], make_client: Callable[..., Any], database_url: str, log_lines: Callable[[], str]
) -> None:
    url = make_url(database_url)
    async with relay_to(url.host or "127.0.0.1", url.port or 5432) as relay:
        through_relay = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
        settings = make_settings()
        settings = settings.model_copy(
            update={"database": DatabaseSettings(database_url=SecretStr(through_relay), db_pool_timeout_s=2)}
        )
        client: httpx.AsyncClient = await make_client(create_app(settings))
        account = await register(client)
        tasks = f"{API}/orgs/{account.personal_org_id}/tasks"
        assert (await client.get(tasks, headers=account.headers)).status_code == 200

        relay.cut()  # pooled connections reset, new ones refused: a restart in progress
        for _ in range(3):
            assert_unavailable(await client.get(tasks, headers=account.headers))
            assert_unavailable(await client.post(tasks, json={"title": "t"}, headers=account.headers))
        login = await client.post(f"{API}/auth/login", json={"email": account.email, "password": PASSWORD})
        assert_unavailable(login)

        relay.restore()
        assert (await client.get(tasks, headers=account.headers)).status_code == 200
        assert (await client.post(tasks, json={"title": "back"}, headers=account.headers)).status_code == 201
    logged = log_lines()
    assert "db.unavailable" in logged
    assert "Traceback" not in logged


@pytest.mark.postgres
async def test_a_missing_database_answers_login_with_503(
    make_settings: Callable[..., Any], make_client: Callable[..., Any], database_url: str
) -> None:
    missing = make_url(database_url).set(database="keel_no_such_database").render_as_string(hide_password=False)
    settings = make_settings()
    settings = settings.model_copy(update={"database": DatabaseSettings(database_url=SecretStr(missing))})
    client: httpx.AsyncClient = await make_client(create_app(settings))
    login = await client.post(f"{API}/auth/login", json={"email": "ada@example.com", "password": "x" * 12})
    assert_unavailable(login)
    assert (await client.get("/health/ready")).status_code == 503


@pytest.mark.postgres
async def test_a_read_on_a_connection_the_database_closed_is_answered_from_a_fresh_one(
    make_settings: Callable[..., Any], make_client: Callable[..., Any], database_url: str
) -> None:
    """After a restart every pooled connection is dead: the first read on one
    runs again on a new connection and succeeds."""
    url = make_url(database_url)
    async with relay_to(url.host or "127.0.0.1", url.port or 5432) as relay:
        through_relay = url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False)
        settings = make_settings()
        settings = settings.model_copy(update={"database": DatabaseSettings(database_url=SecretStr(through_relay))})
        client: httpx.AsyncClient = await make_client(create_app(settings))
        account = await register(client)
        tasks = f"{API}/orgs/{account.personal_org_id}/tasks"
        assert (await client.get(tasks, headers=account.headers)).status_code == 200

        relay.cut()  # the database restarts: pooled connections are reset...
        relay.restore()  # ...and it accepts new ones at once
        read = await client.get(tasks, headers=account.headers)
        assert read.status_code == 200, read.text


async def test_only_reads_are_run_again_and_only_once(
    make_settings: Callable[..., Any], make_client: Callable[..., Any]
) -> None:
    """A write that met a closed connection may have been applied: it is
    never re-run. A read is, once; a database still gone is then a 503."""
    app = create_app(make_settings(), routers=[routes.router])
    client: httpx.AsyncClient = await make_client(app)

    async def calls_for(method: str, failures: int) -> tuple[int, int]:
        app.state.stale_calls = 0
        response = await client.request(method, "/test/stale", params={"failures": failures})
        if response.status_code != 200:
            assert_unavailable(response)
        return response.status_code, app.state.stale_calls

    assert await calls_for("GET", 1) == (200, 2)
    assert await calls_for("GET", 2) == (503, 2)
    assert await calls_for("POST", 1) == (503, 1)
