"""Bookmarks: one live bookmark per URL, http(s) only."""

from __future__ import annotations

import httpx
import pytest

from tests.fixtures.accounts import Account, register
from tests.fixtures.accounts import org_url as url


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
