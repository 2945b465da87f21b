"""The audit log: who did what, when, from where; admins only; cursor pages."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.accounts import API, add_member, create_api_key, create_org, register


@pytest.mark.readiness("audit.log")
async def test_changes_are_audited_with_origin(client: httpx.AsyncClient) -> None:
    owner, member = await register(client), await register(client)
    org_id = await create_org(client, owner)
    headers = {**owner.headers, "user-agent": "audit-test/1.0", "x-request-id": "audit-req-1"}
    await client.post(f"{API}/orgs/{org_id}/members", json={"email": member.email, "role": "viewer"}, headers=headers)
    key = await create_api_key(client, org_id, owner)
    await client.delete(f"{API}/orgs/{org_id}/api-keys/{key['id']}", headers=owner.headers)

    response = await client.get(f"{API}/orgs/{org_id}/audit-log", headers=owner.headers)
    assert response.status_code == 200
    events = response.json()["items"]
    actions = [e["action"] for e in events]
    assert actions == ["api_key.revoked", "api_key.created", "member.added", "org.created"]
    added = events[2]
    assert added["actor_user_id"] == owner.id
    assert added["target_id"] == member.id
    assert added["details"] == {"role": "viewer"}
    assert added["user_agent"] == "audit-test/1.0"
    assert added["request_id"] == "audit-req-1"
    assert added["ip"] == "127.0.0.1"
    assert key["secret"] not in response.text


async def test_audit_log_pages_with_signed_cursors(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    org_id = await create_org(client, owner)
    for index in range(5):
        await client.patch(f"{API}/orgs/{org_id}", json={"name": f"name {index}"}, headers=owner.headers)
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"{API}/orgs/{org_id}/audit-log", params=params, headers=owner.headers)).json()
        seen.extend(event["id"] for event in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 6  # 5 updates + creation

    first = (await client.get(f"{API}/orgs/{org_id}/audit-log", params={"limit": 2}, headers=owner.headers)).json()
    tampered = first["next_cursor"][:-3] + ("AAA" if not first["next_cursor"].endswith("AAA") else "BBB")
    for bad in (tampered, "garbage", "x.y", ""):
        response = await client.get(f"{API}/orgs/{org_id}/audit-log", params={"cursor": bad}, headers=owner.headers)
        assert response.status_code in (400, 200 if bad == "" else 400)
        if bad:
            assert response.headers["content-type"] == "application/problem+json"
    for limit in (0, -1, 201, 10**9):
        response = await client.get(f"{API}/orgs/{org_id}/audit-log", params={"limit": limit}, headers=owner.headers)
        assert response.status_code == 422


async def test_audit_log_is_for_admins(client: httpx.AsyncClient) -> None:
    owner, member = await register(client), await register(client)
    org_id = await create_org(client, owner)
    await add_member(client, org_id, owner, member, "member")
    assert (await client.get(f"{API}/orgs/{org_id}/audit-log", headers=member.headers)).status_code == 403
    outsider = await register(client)
    assert (await client.get(f"{API}/orgs/{org_id}/audit-log", headers=outsider.headers)).status_code == 404
