"""API keys: shown once, hashed, org-scoped, revocable, usable as Bearer or X-API-Key."""

from __future__ import annotations

import uuid

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from keel.core.platform import platform
from keel.identity.api_keys.models import ApiKey
from tests.fixtures.accounts import API, create_api_key, create_org, last_seen_written, register


@pytest.mark.readiness("auth.api_keys")
async def test_key_is_shown_once_and_works_until_revoked(client: httpx.AsyncClient, app) -> None:  # type: ignore[no-untyped-def]
    owner = await register(client)
    org_id = await create_org(client, owner)
    created = await create_api_key(client, org_id, owner, role="viewer")
    secret = created["secret"]
    assert secret.startswith("keel_")
    assert len(secret) >= 5 + 43  # 32 random bytes, url-safe base64
    assert created["display_prefix"] == secret[:12]

    listed = await client.get(f"{API}/orgs/{org_id}/api-keys", headers=owner.headers)
    assert secret not in listed.text
    assert [k["id"] for k in listed.json()["items"]] == [created["id"]]
    async with platform(app).database.session(write=False) as session:
        stored = await session.scalar(select(ApiKey).where(ApiKey.id == uuid.UUID(created["id"])))
        assert stored is not None
        assert secret not in (stored.key_hash, stored.display_prefix)

    for headers in ({"authorization": f"Bearer {secret}"}, {"x-api-key": secret}):
        response = await client.get(f"{API}/orgs/{org_id}", headers=headers)
        assert response.status_code == 200
        assert response.json()["role"] == "viewer"
    # Scoped to its org: the owner's personal org is invisible to it.
    assert (await client.get(f"{API}/orgs/{owner.personal_org_id}", headers={"x-api-key": secret})).status_code == 404
    # A key is not a user.
    assert (await client.get(f"{API}/me", headers={"x-api-key": secret})).status_code == 403
    # A viewer key cannot administer.
    assert (await client.get(f"{API}/orgs/{org_id}/api-keys", headers={"x-api-key": secret})).status_code == 403

    revoke = await client.delete(f"{API}/orgs/{org_id}/api-keys/{created['id']}", headers=owner.headers)
    assert revoke.status_code == 204
    assert (await client.get(f"{API}/orgs/{org_id}", headers={"x-api-key": secret})).status_code == 401


async def test_last_used_at_is_recorded(client: httpx.AsyncClient, app: FastAPI) -> None:
    owner = await register(client)
    org_id = await create_org(client, owner)
    created = await create_api_key(client, org_id, owner)
    assert created["last_used_at"] is None
    await client.get(f"{API}/orgs/{org_id}", headers={"x-api-key": created["secret"]})
    await last_seen_written(app)
    [listed] = (await client.get(f"{API}/orgs/{org_id}/api-keys", headers=owner.headers)).json()["items"]
    assert listed["last_used_at"] is not None


@pytest.mark.readiness("auth.role_escalation")
async def test_an_admin_cannot_create_an_owner_key(client: httpx.AsyncClient) -> None:
    owner, admin = await register(client), await register(client)
    org_id = await create_org(client, owner)
    await client.post(
        f"{API}/orgs/{org_id}/members", json={"email": admin.email, "role": "admin"}, headers=owner.headers
    )
    response = await client.post(
        f"{API}/orgs/{org_id}/api-keys", json={"name": "sneaky", "role": "owner"}, headers=admin.headers
    )
    assert response.status_code == 403
    admin_key = await create_api_key(client, org_id, admin, role="admin")
    # An admin key cannot mint an owner key either.
    via_key = await client.post(
        f"{API}/orgs/{org_id}/api-keys",
        json={"name": "sneakier", "role": "owner"},
        headers={"x-api-key": admin_key["secret"]},
    )
    assert via_key.status_code == 403


async def test_revoking_another_orgs_key_is_404(client: httpx.AsyncClient) -> None:
    alice, mallory = await register(client), await register(client)
    org_a = await create_org(client, alice)
    key = await create_api_key(client, org_a, alice)
    response = await client.delete(
        f"{API}/orgs/{mallory.personal_org_id}/api-keys/{key['id']}", headers=mallory.headers
    )
    assert response.status_code == 404
    assert (await client.get(f"{API}/orgs/{org_a}", headers={"x-api-key": key["secret"]})).status_code == 200
