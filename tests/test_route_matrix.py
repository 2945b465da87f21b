"""Generated from the route table: every org route x every role, and from another org.

A role below the route's minimum gets 403; at or above it, authorization
passes (any status but 401/403/404); a member of another org gets 404 —
never 403, never data.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from keel.core.principal import Role
from keel.identity.router import routers as identity_routers
from keel.work.router import routers as work_routers
from tests.fixtures.accounts import API, Account, add_member, create_api_key, create_org, register

ROLES = [Role.VIEWER, Role.MEMBER, Role.ADMIN, Role.OWNER]


def _walk(dependant: Any) -> list[str]:
    names = [getattr(dependant.call, "__name__", "")]
    for sub in dependant.dependencies:
        names.extend(_walk(sub))
    return names


def org_routes() -> list[tuple[str, str, Role]]:
    """(method, path, minimum role) for every API route under /orgs/{org_id}."""
    found = []
    for route in (route for router in [*identity_routers, *work_routers] for route in router.routes):
        if not isinstance(route, APIRoute) or "{org_id}" not in route.path:
            continue
        minimum = next((role for role in ROLES if f"require_{role.value}" in _walk(route.dependant)), None)
        assert minimum is not None, f"{route.path} has no role requirement"
        for method in route.methods or ():
            found.append((method, route.path, minimum))
    return sorted(found)


ROUTES = org_routes()


def test_the_matrix_covers_the_org_routes() -> None:
    paths = {path for _, path, _ in ROUTES}
    assert f"{API}/orgs/{{org_id}}/members/{{user_id}}" in paths
    assert f"{API}/orgs/{{org_id}}/api-keys/{{key_id}}" in paths
    assert f"{API}/orgs/{{org_id}}/audit-log" in paths
    assert f"{API}/orgs/{{org_id}}/tasks/{{task_id}}" in paths
    assert f"{API}/orgs/{{org_id}}/projects/{{project_id}}/restore" in paths


@pytest.fixture
async def people(client: httpx.AsyncClient) -> dict[str, Account]:
    names = ["owner", "admin", "member", "viewer", "outsider"]
    return {name: await register(client) for name in names}


async def _org_with_team(client: httpx.AsyncClient, people: dict[str, Account]) -> tuple[str, dict[str, Any]]:
    org_id = await create_org(client, people["owner"])
    for role in ("admin", "member", "viewer"):
        await add_member(client, org_id, people["owner"], people[role], role)
    key = await create_api_key(client, org_id, people["owner"])
    h = people["owner"].headers
    project = (await client.post(f"{API}/orgs/{org_id}/projects", json={"name": "p"}, headers=h)).json()
    task = (await client.post(f"{API}/orgs/{org_id}/tasks", json={"title": "t"}, headers=h)).json()
    report = (await client.post(f"{API}/orgs/{org_id}/reports", json={"title": "r"}, headers=h)).json()
    bookmark = (
        await client.post(
            f"{API}/orgs/{org_id}/bookmarks", json={"title": "b", "url": "https://example.com"}, headers=h
        )
    ).json()
    ids = {"project_id": project["id"], "task_id": task["id"], "report_id": report["id"], "bookmark_id": bookmark["id"]}
    return org_id, {**key, **ids}


def _url(path: str, org_id: str, ids: dict[str, Any], user_id: str) -> str:
    values = {"org_id": org_id, "key_id": ids["id"], "user_id": user_id, **ids}
    return re.sub(r"\{(\w+)\}", lambda m: str(values[m.group(1)]), path)


@pytest.mark.readiness("tenancy.role_matrix")
@pytest.mark.parametrize(("method", "path", "minimum"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
async def test_roles_and_foreign_orgs(
    client: httpx.AsyncClient, people: dict[str, Account], method: str, path: str, minimum: Role
) -> None:
    for role in ROLES:
        org_id, key = await _org_with_team(client, people)
        caller = people[role.value]
        # Member routes target the caller themself, so "leave" is exercised for everyone.
        url = _url(path, org_id, key, caller.id)
        response = await client.request(method, url, json={}, headers=caller.headers)
        if role.at_least(minimum):
            # Authorization passed: any answer but 401/403 and the org's 404
            # (restoring a live task is a 404 of its own).
            assert response.status_code not in (401, 403), (role, response.text)
            if response.status_code == 404:
                assert response.json()["detail"] != "Organization not found.", role
        else:
            assert response.status_code == 403, (role, response.text)

    org_id, key = await _org_with_team(client, people)
    url = _url(path, org_id, key, people["owner"].id)
    foreign = await client.request(method, url, json={}, headers=people["outsider"].headers)
    assert foreign.status_code == 404, foreign.text
    assert foreign.json()["detail"] == "Organization not found."
