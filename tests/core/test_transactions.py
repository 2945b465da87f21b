"""The request boundary commits once on success and rolls back on any error."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from keel.config import HttpSettings, Settings
from keel.main import create_app
from tests.fixtures import routes
from tests.fixtures.databases import database_settings


async def count(client: httpx.AsyncClient, event_type: str) -> int:
    response = await client.get(f"/test/events/{event_type}")
    assert response.status_code == 200
    return int(response.json()["count"])


def unique_event() -> str:
    return f"test.{uuid.uuid4().hex[:12]}"


@pytest.mark.readiness("db.commit_at_boundary")
async def test_successful_write_is_committed(client: httpx.AsyncClient) -> None:
    event = unique_event()
    response = await client.post(f"/test/events/{event}")
    assert response.status_code == 201
    assert await count(client, event) == 1


@pytest.mark.readiness("db.rollback_on_error")
@pytest.mark.parametrize(("fail", "status"), [("conflict", 409), ("crash", 500)])
async def test_failed_request_leaves_nothing_written(client: httpx.AsyncClient, fail: str, status: int) -> None:
    event = unique_event()
    response = await client.post(f"/test/events/{event}", params={"fail": fail})
    assert response.status_code == status
    assert await count(client, event) == 0


@pytest.mark.readiness("db.rollback_on_timeout")
async def test_timed_out_write_is_rolled_back(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(
        create_app(make_settings(http=HttpSettings(request_timeout_s=0.3)), routers=[routes.router])
    )
    event = unique_event()
    response = await client.post(f"/test/events/{event}", params={"fail": "slow"})
    assert response.status_code == 504
    assert await count(client, event) == 0
    # The connection went back to the pool: later writes still work.
    assert (await client.post(f"/test/events/{event}")).status_code == 201
    assert await count(client, event) == 1


async def test_read_requests_hand_their_connection_back_without_committing(
    make_settings: Callable[..., Settings], make_client: Callable[..., Any], database_url: str
) -> None:
    """A read session runs in autocommit: closing it is all that ends it. With
    one pooled connection, reads in a row and at once, then a write, all land."""
    settings = make_settings(database=database_settings(database_url, db_pool_size=1, db_max_overflow=0))
    client = await make_client(create_app(settings, routers=[routes.router]))
    event = unique_event()
    assert (await client.post(f"/test/events/{event}")).status_code == 201
    for _ in range(3):
        assert await count(client, event) == 1
    assert await asyncio.gather(*(count(client, event) for _ in range(5))) == [1] * 5
    assert (await client.post(f"/test/events/{event}")).status_code == 201
    assert await count(client, event) == 2


async def test_domain_routers_turn_away_only_paths_they_do_not_have() -> None:
    """A router answers exactly its routes' paths (405 for another method on
    one), also for routes added after it first matched, and lets every other
    path, even under its prefix, fall through to the next router."""
    from fastapi import FastAPI

    from tests.fixtures.things import things_routers

    outer, inner = things_routers()
    app = FastAPI()
    app.include_router(outer)
    app.include_router(inner)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/api/v1/things/a")).json() == {"thing": "a"}
        assert (await client.get("/api/v1/things/a/parts")).json() == {"parts of": "a"}
        assert (await client.delete("/api/v1/things/a")).status_code == 405
        assert (await client.get("/api/v1/things/a/other")).status_code == 404

        @outer.get("/{thing_id}/late")
        async def late(thing_id: str) -> dict[str, str]:
            return {"late": thing_id}

        assert (await client.get("/api/v1/things/a/late")).json() == {"late": "a"}
