"""last_active_at: updated by API calls, at most one write per user per interval."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.accounts import API, register


async def last_active(client: httpx.AsyncClient, headers: dict[str, str]) -> str | None:
    me = (await client.get(f"{API}/me", headers=headers)).json()
    return me["last_active_at"]  # type: ignore[no-any-return]


@pytest.mark.readiness("identity.activity_throttled")
async def test_activity_is_stamped_once_per_interval(client: httpx.AsyncClient) -> None:
    account = await register(client)
    first = await last_active(client, account.headers)
    # The stamp is written by the first authenticated call; the read that
    # made it may or may not see it, the next one does.
    stamped = await last_active(client, account.headers)
    assert stamped is not None
    assert first in (None, stamped)
    await client.post(f"{API}/orgs", json={"name": "busy"}, headers=account.headers)
    assert await last_active(client, account.headers) == stamped
