"""Reports and bookmarks: the shared life cycle plus their own rules."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.accounts import API, Account, register


@pytest.fixture
async def owner(client: httpx.AsyncClient) -> Account:
    return await register(client)


def url(owner: Account, kind: str) -> str:
    return f"{API}/orgs/{owner.personal_org_id}/{kind}"


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


async def test_bookmark_urls_are_unique_per_org_among_live_bookmarks(client: httpx.AsyncClient, owner: Account) -> None:
    h = owner.headers
    body = {"url": "https://example.com/docs?page=1", "title": "Docs", "tags": ["ref"]}
    first = await client.post(url(owner, "bookmarks"), json=body, headers=h)
    assert first.status_code == 201
    assert first.json()["url"] == "https://example.com/docs?page=1"
    duplicate = await client.post(url(owner, "bookmarks"), json={**body, "title": "Again"}, headers=h)
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == "application/problem+json"
    # Another org may bookmark the same URL.
    other = await register(client)
    assert (await client.post(url(other, "bookmarks"), json=body, headers=other.headers)).status_code == 201
    # After a soft delete the URL is free again; restoring the old one then conflicts.
    assert (await client.delete(f"{url(owner, 'bookmarks')}/{first.json()['id']}", headers=h)).status_code == 204
    assert (await client.post(url(owner, "bookmarks"), json=body, headers=h)).status_code == 201
    restore = await client.post(f"{url(owner, 'bookmarks')}/{first.json()['id']}/restore", headers=h)
    assert restore.status_code == 409


@pytest.mark.parametrize(
    "link",
    [
        "javascript:alert(1)",
        "ftp://example.com/x",
        "file:///etc/passwd",
        "example.com",
        "https://",
        "http://" + "a" * 2100 + ".com",
    ],
)
async def test_bookmarks_accept_only_http_urls(client: httpx.AsyncClient, owner: Account, link: str) -> None:
    response = await client.post(url(owner, "bookmarks"), json={"url": link, "title": "x"}, headers=owner.headers)
    assert response.status_code == 422


async def test_bookmark_url_update_to_an_existing_one_conflicts(client: httpx.AsyncClient, owner: Account) -> None:
    h = owner.headers
    await client.post(url(owner, "bookmarks"), json={"url": "https://a.example", "title": "a"}, headers=h)
    b = (await client.post(url(owner, "bookmarks"), json={"url": "https://b.example", "title": "b"}, headers=h)).json()
    response = await client.patch(f"{url(owner, 'bookmarks')}/{b['id']}", json={"url": "https://a.example"}, headers=h)
    assert response.status_code == 409
