"""Account export and deletion (GDPR)."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import func, select, update

from keel.core.platform import platform
from keel.identity.audit.models import AuditEvent
from keel.identity.orgs.models import Membership
from keel.identity.users.models import User
from tests.fixtures.accounts import API, PASSWORD, add_member, create_api_key, create_org, last_seen_written, register


async def test_export_holds_everything_about_the_user(client: httpx.AsyncClient) -> None:
    account = await register(client)
    org_id = await create_org(client, account, "Exported")
    await create_api_key(client, org_id, account)
    response = await client.get(f"{API}/me/export", headers=account.headers)
    assert response.status_code == 200
    data = response.json()
    assert data["user"]["email"] == account.email
    assert {m["org_id"] for m in data["memberships"]} == {org_id, account.personal_org_id}
    assert len(data["sessions"]) == 1
    assert len(data["api_keys_created"]) == 1
    assert {"user.registered", "org.created", "api_key.created"} <= {e["action"] for e in data["audit_events"]}
    assert "password" not in response.text
    assert "key_hash" not in response.text


@pytest.mark.readiness("gdpr.delete_account")
async def test_deleting_an_account_revokes_everything_and_anonymizes(client: httpx.AsyncClient, app) -> None:  # type: ignore[no-untyped-def]
    account = await register(client)
    team_owner = await register(client)
    team = await create_org(client, team_owner)
    await add_member(client, team, team_owner, account, "admin")
    key = await create_api_key(client, team, account)

    response = await client.delete(f"{API}/me", headers=account.headers)
    assert response.status_code == 204
    assert (await client.get(f"{API}/me", headers=account.headers)).status_code == 401
    refresh = await client.post(f"{API}/auth/refresh", json={"refresh_token": account.refresh_token})
    assert refresh.status_code == 401
    assert (await client.get(f"{API}/orgs/{team}", headers={"x-api-key": key["secret"]})).status_code == 401
    login = await client.post(f"{API}/auth/login", json={"email": account.email, "password": PASSWORD})
    assert login.status_code == 401
    members = (await client.get(f"{API}/orgs/{team}/members", headers=team_owner.headers)).json()["items"]
    assert account.id not in {m["user_id"] for m in members}
    # The personal org went with its only member.
    assert (await client.get(f"{API}/orgs/{account.personal_org_id}", headers=team_owner.headers)).status_code == 404

    async with platform(app).database.session(write=False) as session:
        user = await session.get(User, uuid.UUID(account.id))
        assert user is not None
        assert account.email not in (user.email, user.email_normalized)
        assert user.name == "Deleted user"
        assert user.password_hash is None
        events = (await session.scalars(select(AuditEvent).where(AuditEvent.actor_user_id == user.id))).all()
        assert events, "audit rows are kept"
        assert all(event.ip is None and event.user_agent is None for event in events)
    # The address is free again.
    assert (await register(client, account.email)).email == account.email


@pytest.mark.readiness("gdpr.sole_owner_409")
async def test_sole_owner_of_a_team_must_hand_it_over_first(client: httpx.AsyncClient) -> None:
    owner, member = await register(client), await register(client)
    org_id = await create_org(client, owner)
    await add_member(client, org_id, owner, member, "member")
    refused = await client.delete(f"{API}/me", headers=owner.headers)
    assert refused.status_code == 409
    assert (await client.get(f"{API}/me", headers=owner.headers)).status_code == 200
    await client.post(f"{API}/orgs/{org_id}/transfer-ownership", json={"user_id": member.id}, headers=owner.headers)
    assert (await client.delete(f"{API}/me", headers=owner.headers)).status_code == 204
    assert (await client.get(f"{API}/orgs/{org_id}", headers=member.headers)).status_code == 200


@pytest.mark.readiness("gdpr.delete_during_requests")
async def test_deleting_while_requests_are_in_flight_leaves_no_orphans(client: httpx.AsyncClient, app) -> None:  # type: ignore[no-untyped-def]
    account = await register(client)
    creates = [client.post(f"{API}/orgs", json={"name": f"race {i}"}, headers=account.headers) for i in range(6)]
    reads = [client.get(f"{API}/me", headers=account.headers) for _ in range(3)]
    deletion = client.delete(f"{API}/me", headers=account.headers)
    responses = await asyncio.gather(*creates[:3], deletion, *creates[3:], *reads)
    statuses = [r.status_code for r in responses]
    assert all(status in (200, 201, 204, 401) for status in statuses), statuses
    assert statuses[3] == 204
    async with platform(app).database.session(write=False) as session:
        remaining = await session.scalar(
            select(func.count()).select_from(Membership).where(Membership.user_id == uuid.UUID(account.id))
        )
        assert remaining == 0


@pytest.mark.readiness("auth.concurrent_writers_one_user")
async def test_concurrent_writes_of_one_user_survive_a_due_activity_stamp(client: httpx.AsyncClient, app) -> None:  # type: ignore[no-untyped-def]
    """Every write locks its user's row against deletion and, once per interval,
    stamps last_active_at on it. Those locks must not deadlock each other when
    many writes of one user arrive together just as the stamp falls due."""
    account = await register(client)
    await last_seen_written(app)  # registering read /me: its stamp lands after the response
    for _ in range(3):
        async with platform(app).database.session(write=True) as session:
            await session.execute(update(User).where(User.id == uuid.UUID(account.id)).values(last_active_at=None))
            await session.commit()
        writes = [client.post(f"{API}/orgs", json={"name": f"burst {i}"}, headers=account.headers) for i in range(12)]
        statuses = [response.status_code for response in await asyncio.gather(*writes)]
        assert statuses == [201] * 12, statuses
