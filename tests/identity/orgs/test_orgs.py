"""Organizations and memberships: role rules, escalation attempts, the last owner."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.accounts import API, Account, add_member, create_org, register


@pytest.fixture
async def team(client: httpx.AsyncClient) -> dict[str, Account | str]:
    owner, admin, member, viewer = [await register(client) for _ in range(4)]
    org_id = await create_org(client, owner)
    for account, role in ((admin, "admin"), (member, "member"), (viewer, "viewer")):
        await add_member(client, org_id, owner, account, role)
    return {"org": org_id, "owner": owner, "admin": admin, "member": member, "viewer": viewer}


async def test_org_lifecycle(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    org_id = await create_org(client, owner, "Lifecycle")
    listed = (await client.get(f"{API}/orgs", headers=owner.headers)).json()["items"]
    assert {o["id"] for o in listed} >= {org_id, owner.personal_org_id}
    renamed = await client.patch(f"{API}/orgs/{org_id}", json={"name": "Renamed"}, headers=owner.headers)
    assert renamed.json()["name"] == "Renamed"
    assert (await client.delete(f"{API}/orgs/{org_id}", headers=owner.headers)).status_code == 204
    assert (await client.get(f"{API}/orgs/{org_id}", headers=owner.headers)).status_code == 404
    assert org_id not in {o["id"] for o in (await client.get(f"{API}/orgs", headers=owner.headers)).json()["items"]}


async def test_members_are_listed_with_roles(client: httpx.AsyncClient, team) -> None:  # type: ignore[no-untyped-def]
    response = await client.get(f"{API}/orgs/{team['org']}/members", headers=team["viewer"].headers)
    assert response.status_code == 200
    roles = {m["email"]: m["role"] for m in response.json()["items"]}
    assert roles == {team[r].email: r for r in ("owner", "admin", "member", "viewer")}


@pytest.mark.readiness("auth.role_escalation")
async def test_a_member_cannot_grant_itself_admin(client: httpx.AsyncClient, team) -> None:  # type: ignore[no-untyped-def]
    member = team["member"]
    response = await client.patch(
        f"{API}/orgs/{team['org']}/members/{member.id}", json={"role": "admin"}, headers=member.headers
    )
    assert response.status_code == 403


@pytest.mark.readiness("auth.role_escalation")
async def test_an_admin_cannot_make_owners_or_touch_owners(client: httpx.AsyncClient, team) -> None:  # type: ignore[no-untyped-def]
    org, admin, owner, viewer = team["org"], team["admin"], team["owner"], team["viewer"]
    promote = await client.patch(f"{API}/orgs/{org}/members/{viewer.id}", json={"role": "owner"}, headers=admin.headers)
    assert promote.status_code == 403
    demote_owner = await client.patch(
        f"{API}/orgs/{org}/members/{owner.id}", json={"role": "viewer"}, headers=admin.headers
    )
    assert demote_owner.status_code == 403
    remove_owner = await client.delete(f"{API}/orgs/{org}/members/{owner.id}", headers=admin.headers)
    assert remove_owner.status_code == 403
    newcomer = await register(client)
    as_owner = await client.post(
        f"{API}/orgs/{org}/members", json={"email": newcomer.email, "role": "owner"}, headers=admin.headers
    )
    assert as_owner.status_code == 403
    ok = await client.patch(f"{API}/orgs/{org}/members/{viewer.id}", json={"role": "member"}, headers=admin.headers)
    assert ok.status_code == 200
    assert ok.json()["role"] == "member"


@pytest.mark.readiness("auth.last_owner")
async def test_the_last_owner_cannot_leave_or_be_demoted(client: httpx.AsyncClient, team) -> None:  # type: ignore[no-untyped-def]
    org, owner = team["org"], team["owner"]
    leave = await client.delete(f"{API}/orgs/{org}/members/{owner.id}", headers=owner.headers)
    assert leave.status_code == 409
    demote = await client.patch(f"{API}/orgs/{org}/members/{owner.id}", json={"role": "admin"}, headers=owner.headers)
    assert demote.status_code == 409


async def test_ownership_transfer(client: httpx.AsyncClient, team) -> None:  # type: ignore[no-untyped-def]
    org, owner, admin = team["org"], team["owner"], team["admin"]
    response = await client.post(
        f"{API}/orgs/{org}/transfer-ownership", json={"user_id": admin.id}, headers=owner.headers
    )
    assert response.status_code == 200
    assert response.json()["role"] == "owner"
    roles = {
        m["user_id"]: m["role"]
        for m in (await client.get(f"{API}/orgs/{org}/members", headers=owner.headers)).json()["items"]
    }
    assert roles[admin.id] == "owner"
    assert roles[owner.id] == "admin"
    # The former owner can now leave; the new one cannot.
    assert (await client.delete(f"{API}/orgs/{org}/members/{owner.id}", headers=owner.headers)).status_code == 204
    assert (await client.delete(f"{API}/orgs/{org}/members/{admin.id}", headers=admin.headers)).status_code == 409


async def test_members_can_leave(client: httpx.AsyncClient, team) -> None:  # type: ignore[no-untyped-def]
    org, viewer = team["org"], team["viewer"]
    assert (await client.delete(f"{API}/orgs/{org}/members/{viewer.id}", headers=viewer.headers)).status_code == 204
    assert (await client.get(f"{API}/orgs/{org}", headers=viewer.headers)).status_code == 404


async def test_adding_unknown_or_existing_members(client: httpx.AsyncClient, team) -> None:  # type: ignore[no-untyped-def]
    org, owner, member = team["org"], team["owner"], team["member"]
    unknown = await client.post(
        f"{API}/orgs/{org}/members", json={"email": "nobody-here@example.com", "role": "member"}, headers=owner.headers
    )
    assert unknown.status_code == 404
    again = await client.post(
        f"{API}/orgs/{org}/members", json={"email": member.email.upper(), "role": "viewer"}, headers=owner.headers
    )
    assert again.status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x" * 101},
        {"name": "ok", "extra": 1},
        {"name": None},
        {"name": ["'; DROP TABLE organizations"]},
    ],
)
async def test_bad_org_input_is_422(client: httpx.AsyncClient, body: dict[str, object]) -> None:
    owner = await register(client)
    response = await client.post(f"{API}/orgs", json=body, headers=owner.headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_injection_strings_are_stored_as_data(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    name = 'Robert\'); DROP TABLE users;-- {"$gt": ""}'
    org_id = await create_org(client, owner, name)
    assert (await client.get(f"{API}/orgs/{org_id}", headers=owner.headers)).json()["name"] == name


async def test_invalid_org_id_is_422_not_500(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    response = await client.get(f"{API}/orgs/not-a-uuid", headers=owner.headers)
    assert response.status_code == 422


async def test_member_and_org_lists_page_with_cursors(client: httpx.AsyncClient, team) -> None:  # type: ignore[no-untyped-def]
    owner = team["owner"]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"{API}/orgs/{team['org']}/members", params=params, headers=owner.headers)).json()
        seen.extend(m["user_id"] for m in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [team[r].id for r in ("owner", "admin", "member", "viewer")]
    first = (await client.get(f"{API}/orgs", params={"limit": 1}, headers=owner.headers)).json()
    assert first["items"][0]["id"] == owner.personal_org_id
    second = (
        await client.get(f"{API}/orgs", params={"limit": 1, "cursor": first["next_cursor"]}, headers=owner.headers)
    ).json()
    assert second["items"][0]["id"] == team["org"]
    assert second["next_cursor"] is None
