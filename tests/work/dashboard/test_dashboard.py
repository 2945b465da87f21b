"""Dashboard figures computed in SQL."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import update

from keel.core.clock import now
from keel.core.platform import platform
from keel.identity.users.models import User
from tests.fixtures.accounts import API, add_member, create_org, last_seen_written, register


async def test_dashboard_counts_overdue_and_active_members(client: httpx.AsyncClient, app) -> None:  # type: ignore[no-untyped-def]
    owner, idle = await register(client, name="Owner"), await register(client, name="Idle")
    org_id = await create_org(client, owner)
    await add_member(client, org_id, owner, idle, "viewer")
    await last_seen_written(app)  # registering read /me: its stamp is written after the response
    async with platform(app).database.session(write=True) as session:
        await session.execute(
            update(User).where(User.id == uuid.UUID(idle.id)).values(last_active_at=now() - timedelta(hours=2))
        )
        await session.commit()
    tasks, h = f"{API}/orgs/{org_id}/tasks", owner.headers
    for body in (
        {"title": "a"},
        {"title": "b", "status": "blocked", "due_at": "2000-01-01T00:00:00Z"},
        {"title": "c", "status": "done", "due_at": "2000-01-01T00:00:00Z"},
        {"title": "d", "due_at": "2999-01-01T00:00:00Z"},
        {"title": "e", "status": "in_progress", "due_at": "2001-01-01T00:00:00Z"},
    ):
        assert (await client.post(tasks, json=body, headers=h)).status_code == 201
    gone = (await client.post(tasks, json={"title": "gone", "due_at": "2000-01-01T00:00:00Z"}, headers=h)).json()
    await client.delete(f"{tasks}/{gone['id']}", headers=h)

    response = await client.get(f"{API}/orgs/{org_id}/dashboard", headers=h)
    assert response.status_code == 200
    board = response.json()
    assert board["tasks_by_status"] == {"todo": 2, "in_progress": 1, "blocked": 1, "done": 1}
    assert board["open_tasks"] == 4
    assert board["overdue_tasks"] == 2  # done and deleted tasks are not overdue
    assert [m["name"] for m in board["active_members"]] == ["Owner"]
    assert board["active_within_s"] == 900
    bad = await client.get(f"{API}/orgs/{org_id}/dashboard", params={"active_within_s": 1}, headers=h)
    assert bad.status_code == 422
