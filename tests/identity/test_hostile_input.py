"""Hostile strings in every identity field: a 4xx or a faithful round trip, never a 500."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.accounts import API, create_org, register

HOSTILE = [
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    '{"$gt": ""}',
    "\u0000nul",
    "\U0001f600 emoji \u202e rtl",
    "<script>alert(1)</script>",
    "a" * 10_000,
    "../../etc/passwd",
    "%00%0d%0aSet-Cookie: x=y",
    "\\u0000",
]


def assert_sane(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        assert "Traceback" not in response.text


@pytest.mark.readiness("http.hostile_input")
@pytest.mark.parametrize("value", HOSTILE)
async def test_hostile_values_never_break_identity_routes(client: httpx.AsyncClient, value: str) -> None:
    account = await register(client)
    org_id = await create_org(client, account)
    h = account.headers
    calls = [
        client.post(f"{API}/auth/register", json={"email": value, "password": value, "name": value}),
        client.post(
            f"{API}/auth/register",
            json={"email": f"ok{len(value)}@example.com", "password": "fine-password-9", "name": value},
        ),
        client.post(f"{API}/auth/login", json={"email": value, "password": value}),
        client.post(f"{API}/auth/refresh", json={"refresh_token": value}),
        client.post(f"{API}/auth/logout", json={"refresh_token": value}),
        client.patch(f"{API}/me", json={"name": value}, headers=h),
        client.post(f"{API}/orgs", json={"name": value}, headers=h),
        client.patch(f"{API}/orgs/{org_id}", json={"name": value}, headers=h),
        client.post(f"{API}/orgs/{org_id}/members", json={"email": value, "role": value}, headers=h),
        client.post(f"{API}/orgs/{org_id}/api-keys", json={"name": value, "role": "viewer"}, headers=h),
        client.get(f"{API}/orgs/{org_id}/audit-log", params={"cursor": value[:500]}, headers=h),
        client.get(f"{API}/me", headers={"authorization": f"Bearer {value[:1000]}".encode("utf-8", "replace")}),  # type: ignore[arg-type]
        client.get(f"{API}/me", headers={"x-api-key": f"keel_{value[:1000]}".encode("utf-8", "replace")}),  # type: ignore[arg-type]
    ]
    for call in calls:
        assert_sane(await call)
    assert (await client.get(f"{API}/me", headers=h)).status_code == 200
