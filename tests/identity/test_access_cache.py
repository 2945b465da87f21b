"""Read requests reuse the caller's access; every change to it applies at once.

The memo is per process. In it, a committed change to memberships, users,
organizations or API keys clears it; other processes hear of the change on
the cache's pub/sub, and entries expire after the TTL regardless.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from keel.config import AuthSettings, RedisSettings, Settings
from keel.identity.access_cache import MISSING, AccessCache
from keel.main import create_app
from tests.fixtures.accounts import (
    API,
    Account,
    add_member,
    create_api_key,
    create_org,
    identity_resolver,
    last_seen_written,
    register,
)
from tests.fixtures.databases import database_settings
from tests.fixtures.statements import executed_statements
from tests.fixtures.waiting import eventually

# A statement reading or writing access rows (not one that joins a name in).
ABOUT_ACCESS = re.compile(r"\b(from|update|into) (users|memberships|organizations|api_keys)\b")


def auth(**settings: Any) -> AuthSettings:
    return AuthSettings(argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1, **settings)


@asynccontextmanager
async def access_queries(app: FastAPI) -> AsyncIterator[list[str]]:
    """The statements that read or write access rows while the block runs."""
    async with executed_statements(app) as statements:
        about_access: list[str] = []
        yield about_access
    normalized = (" ".join(statement.lower().split()) for statement in statements)
    about_access += [statement for statement in normalized if ABOUT_ACCESS.search(statement)]


@pytest.fixture
async def crew(client: httpx.AsyncClient) -> dict[str, Any]:
    owner, member = await register(client), await register(client)
    org_id = await create_org(client, owner)
    await add_member(client, org_id, owner, member, "admin")
    return {"org": org_id, "owner": owner, "member": member, "tasks": f"{API}/orgs/{org_id}/tasks"}


@pytest.mark.readiness("auth.access_cache")
async def test_a_repeated_read_does_not_ask_the_database_who_the_caller_is(
    client: httpx.AsyncClient, app: FastAPI, crew: dict[str, Any]
) -> None:
    headers = crew["member"].headers
    identity_resolver(app).access.clear()  # as when the entries expire
    async with access_queries(app) as seen:
        assert (await client.get(crew["tasks"], headers=headers)).status_code == 200
    # Who the caller is and their role, asked in one statement.
    assert len(seen) == 1
    assert "from users" in seen[0]
    assert "memberships" in seen[0]
    async with access_queries(app) as seen:
        assert (await client.get(crew["tasks"], headers=headers)).status_code == 200
    assert seen == []
    # Writes always ask (and lock): the memo never authorizes a change.
    async with access_queries(app) as seen:
        assert (await client.post(crew["tasks"], json={"title": "t"}, headers=headers)).status_code == 201
    assert any("users" in statement for statement in seen)
    assert any("memberships" in statement for statement in seen)


async def remove_member(client: httpx.AsyncClient, crew: dict[str, Any]) -> None:
    url = f"{API}/orgs/{crew['org']}/members/{crew['member'].id}"
    assert (await client.delete(url, headers=crew["owner"].headers)).status_code == 204


async def demote_member(client: httpx.AsyncClient, crew: dict[str, Any]) -> None:
    url = f"{API}/orgs/{crew['org']}/members/{crew['member'].id}"
    assert (await client.patch(url, json={"role": "viewer"}, headers=crew["owner"].headers)).status_code == 200


async def delete_org(client: httpx.AsyncClient, crew: dict[str, Any]) -> None:
    assert (await client.delete(f"{API}/orgs/{crew['org']}", headers=crew["owner"].headers)).status_code == 204


async def delete_account(client: httpx.AsyncClient, crew: dict[str, Any]) -> None:
    assert (await client.delete(f"{API}/me", headers=crew["member"].headers)).status_code == 204


@pytest.mark.readiness("auth.access_cache")
@pytest.mark.parametrize(
    ("change", "path", "before", "after"),
    [
        (remove_member, "tasks", 200, 404),
        (delete_org, "tasks", 200, 404),
        (delete_account, "tasks", 200, 401),
        # Listing API keys needs the admin role.
        (demote_member, "api-keys", 200, 403),
    ],
)
async def test_a_change_of_access_applies_to_the_very_next_read(
    client: httpx.AsyncClient,
    crew: dict[str, Any],
    change: Callable[[httpx.AsyncClient, dict[str, Any]], Awaitable[None]],
    path: str,
    before: int,
    after: int,
) -> None:
    url = f"{API}/orgs/{crew['org']}/{path}"
    for _ in range(2):  # the second read is served from the memo
        assert (await client.get(url, headers=crew["member"].headers)).status_code == before
    await change(client, crew)
    assert (await client.get(url, headers=crew["member"].headers)).status_code == after


@pytest.mark.readiness("auth.access_cache")
async def test_a_new_member_is_let_in_at_once(client: httpx.AsyncClient, crew: dict[str, Any]) -> None:
    newcomer = await register(client)
    for _ in range(2):  # "not a member" is remembered too
        assert (await client.get(crew["tasks"], headers=newcomer.headers)).status_code == 404
    await add_member(client, crew["org"], crew["owner"], newcomer, "viewer")
    assert (await client.get(crew["tasks"], headers=newcomer.headers)).status_code == 200


@pytest.mark.readiness("auth.access_cache")
async def test_a_revoked_api_key_is_refused_at_once(client: httpx.AsyncClient, crew: dict[str, Any]) -> None:
    key = await create_api_key(client, crew["org"], crew["owner"], role="viewer")
    headers = {"x-api-key": key["secret"]}
    for _ in range(2):
        assert (await client.get(crew["tasks"], headers=headers)).status_code == 200
    revoke = await client.delete(f"{API}/orgs/{crew['org']}/api-keys/{key['id']}", headers=crew["owner"].headers)
    assert revoke.status_code == 204
    assert (await client.get(crew["tasks"], headers=headers)).status_code == 401


@pytest.mark.readiness("auth.access_cache")
async def test_last_seen_stamps_do_not_clear_the_memo(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    app = create_app(make_settings(auth=auth(activity_write_interval_s=1)))
    client = await make_client(app)
    account = await register(client)
    tasks = f"{API}/orgs/{account.personal_org_id}/tasks"
    assert (await client.get(tasks, headers=account.headers)).status_code == 200
    await asyncio.sleep(1.1)
    async with access_queries(app) as seen:
        assert (await client.get(tasks, headers=account.headers)).status_code == 200  # stamps "last seen"
        await last_seen_written(app)
        assert (await client.get(tasks, headers=account.headers)).status_code == 200
    assert len(seen) == 1
    assert seen[0].startswith("update users set last_active_at")


@pytest.fixture
async def two_processes(
    make_settings: Callable[..., Settings], make_client: Callable[..., Any]
) -> Callable[..., Awaitable[tuple[httpx.AsyncClient, httpx.AsyncClient]]]:
    """Two apps on one database, as two keel processes would be."""

    async def start(**sections: Any) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        settings = make_settings(**sections)
        first = await make_client(create_app(settings))
        second = await make_client(create_app(settings))
        return first, second

    return start


async def crew_on(client: httpx.AsyncClient) -> tuple[Account, Account, str]:
    owner, member = await register(client), await register(client)
    org_id = await create_org(client, owner)
    await add_member(client, org_id, owner, member, "member")
    return owner, member, org_id


@pytest.mark.redis
@pytest.mark.readiness("auth.access_cache_broadcast")
async def test_other_processes_hear_of_a_change(two_processes) -> None:  # type: ignore[no-untyped-def]
    # A TTL longer than the test: only the broadcast can make the second process see it.
    first, second = await two_processes(auth=auth(access_cache_ttl_s=60))
    owner, member, org_id = await crew_on(first)
    tasks = f"{API}/orgs/{org_id}/tasks"
    for _ in range(2):
        assert (await second.get(tasks, headers=member.headers)).status_code == 200
    removed = await first.delete(f"{API}/orgs/{org_id}/members/{member.id}", headers=owner.headers)
    assert removed.status_code == 204

    async def refused() -> bool:
        response: httpx.Response = await second.get(tasks, headers=member.headers)
        return response.status_code == 404

    assert await eventually(refused)


@pytest.mark.readiness("auth.access_cache_ttl")
async def test_without_a_shared_cache_a_change_reaches_other_processes_within_the_ttl(two_processes) -> None:  # type: ignore[no-untyped-def]
    first, second = await two_processes(redis=RedisSettings(redis_url=None), auth=auth(access_cache_ttl_s=0.5))
    owner, member, org_id = await crew_on(first)
    tasks = f"{API}/orgs/{org_id}/tasks"
    assert (await second.get(tasks, headers=member.headers)).status_code == 200
    removed = await first.delete(f"{API}/orgs/{org_id}/members/{member.id}", headers=owner.headers)
    assert removed.status_code == 204

    async def refused() -> bool:
        response: httpx.Response = await second.get(tasks, headers=member.headers)
        return response.status_code == 404

    assert await eventually(refused, within_s=3.0)


def test_an_answer_read_before_a_change_is_not_remembered() -> None:
    memo = AccessCache(ttl_s=60)
    generation = memo.generation  # a read starts...
    memo.clear()  # ...a change commits meanwhile...
    memo.put("role", "admin", generation=generation)  # ...and the read finishes
    assert memo.get("role") is MISSING
    memo.put("role", "viewer", generation=memo.generation)
    assert memo.get("role") == "viewer"


def test_a_zero_ttl_remembers_nothing() -> None:
    memo = AccessCache(ttl_s=0)
    memo.put("role", "admin", generation=memo.generation)
    assert memo.get("role") is MISSING


@pytest.mark.readiness("db.one_connection_per_request")
async def test_reads_that_stamp_last_seen_hold_one_pooled_connection_at_a_time(
    make_settings: Callable[..., Settings], make_client: Callable[..., Any], database_url: str
) -> None:
    """As many readers as the pool has connections, all due a "last seen" stamp:
    each must not hold one connection while waiting for another to stamp."""
    settings = make_settings(
        database=database_settings(database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout_s=2),
        auth=auth(activity_write_interval_s=1, access_cache_ttl_s=0),
    )
    client = await make_client(create_app(settings))
    account = await register(client)
    await asyncio.sleep(1.1)  # the stamp falls due
    tasks = f"{API}/orgs/{account.personal_org_id}/tasks"
    responses = await asyncio.gather(*(client.get(tasks, headers=account.headers) for _ in range(3)))
    assert [response.status_code for response in responses] == [200, 200, 200]
