"""Reports: the shared life cycle plus their own rules."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.accounts import Account
from tests.fixtures.accounts import org_url as url


async def test_report_life_cycle(client: httpx.AsyncClient, owner: Account) -> None:
    h = owner.headers
    created = await client.post(
        url(owner, "reports"),
        json={
            "title": "Q3",
            "body": "# Summary\n\nAll **good**.",
            "period_start": "2026-07-01",
            "period_end": "2026-09-30",
        },
        headers=h,
    )
    assert created.status_code == 201
    report = created.json()
    assert report["status"] == "draft"
    assert report["created_by_id"] == owner.id
    item = f"{url(owner, 'reports')}/{report['id']}"
    got = await client.get(item, headers=h)
    assert got.headers["etag"] == '"v1"'
    published = await client.patch(item, json={"status": "published"}, headers={**h, "if-match": '"v1"'})
    assert published.json()["status"] == "published"
    assert (await client.patch(item, json={"title": "x"}, headers={**h, "if-match": '"v1"'})).status_code == 412
    assert (await client.delete(item, headers=h)).status_code == 204
    assert (await client.get(url(owner, "reports"), headers=h)).json()["items"] == []
    assert (await client.post(f"{item}/restore", headers=h)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"title": "x", "period_start": "2026-09-30", "period_end": "2026-07-01"},
        {"title": "x", "period_start": "yesterday"},
        {"title": "x", "status": "final"},
        {"title": "x", "body": "b" * 100_001},
        {"title": ""},
    ],
)
async def test_bad_reports_are_422(client: httpx.AsyncClient, owner: Account, body: dict[str, object]) -> None:
    assert (await client.post(url(owner, "reports"), json=body, headers=owner.headers)).status_code == 422
