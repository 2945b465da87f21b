"""Ranked search across the org's tasks, projects, reports and bookmarks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from keel.core.platform import platform
from keel.work.search import repository
from tests.fixtures.accounts import API, identity_resolver, last_seen_written, register


async def test_search_finds_every_kind_ranked_and_paged(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    org = f"{API}/orgs/{owner.personal_org_id}"
    h = owner.headers
    await client.post(
        f"{org}/tasks", json={"title": "Rocket launch checklist", "description": "rocket rocket"}, headers=h
    )
    await client.post(f"{org}/projects", json={"name": "Rocket", "description": "the launch"}, headers=h)
    await client.post(f"{org}/reports", json={"title": "Launch review", "body": "rocket went up"}, headers=h)
    await client.post(f"{org}/bookmarks", json={"title": "Rocket docs", "url": "https://rocket.example"}, headers=h)
    await client.post(f"{org}/tasks", json={"title": "Unrelated"}, headers=h)
    outsider = await register(client)
    await client.post(
        f"{API}/orgs/{outsider.personal_org_id}/tasks", json={"title": "Rocket secret"}, headers=outsider.headers
    )

    response = await client.get(f"{org}/search", params={"q": "rocket"}, headers=h)
    assert response.status_code == 200
    hits = response.json()["items"]
    assert {hit["kind"] for hit in hits} == {"task", "project", "report", "bookmark"}
    assert "Rocket secret" not in {hit["title"] for hit in hits}
    ranks = [hit["rank"] for hit in hits]
    assert ranks == sorted(ranks, reverse=True)

    seen: list[tuple[str, str]] = []
    cursor = None
    while True:
        params: dict[str, str | int] = {"q": "rocket", "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(f"{org}/search", params=params, headers=h)).json()
        seen.extend((hit["kind"], hit["id"]) for hit in page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen) == sorted((hit["kind"], hit["id"]) for hit in hits)
    first = (await client.get(f"{org}/search", params={"q": "rocket", "limit": 1}, headers=h)).json()
    # A cursor belongs to its query.
    other_query = await client.get(f"{org}/search", params={"q": "launch", "cursor": first["next_cursor"]}, headers=h)
    assert other_query.status_code == 400
    assert (await client.get(f"{org}/search", headers=h)).status_code == 422
    assert (await client.get(f"{org}/search", params={"q": "***"}, headers=h)).json()["items"] == []


@pytest.mark.sqlite
async def test_search_and_dashboard_read_off_the_event_loop_on_sqlite(client: httpx.AsyncClient, app) -> None:  # type: ignore[no-untyped-def]
    """Their statements may run long (every match of a common word ranked, an
    org's aggregates, a task list filtered by text): they go to the
    database's long-read engine, whose connections run on aiosqlite's
    threads; hot reads stay on the loop."""
    owner = await register(client)
    org = f"{API}/orgs/{owner.personal_org_id}"
    assert (await client.post(f"{org}/tasks", json={"title": "findable"}, headers=owner.headers)).status_code == 201
    database = platform(app).database
    seen: dict[str, list[str]] = {"inline": [], "threads": []}

    def listen(engine: Any, into: list[str]) -> Callable[..., None]:
        def executed(_connection: Any, _cursor: Any, statement: str, *_: Any) -> None:
            into.append(statement)

        event.listen(engine.sync_engine, "before_cursor_execute", executed)
        return executed

    listeners = [
        (database.engine, listen(database.engine, seen["inline"])),
        (database.long_read_engine, listen(database.long_read_engine, seen["threads"])),
    ]
    try:
        await last_seen_written(app)
        identity_resolver(app).access.clear()
        seen["inline"].clear()
        for path in ("/search?q=findable", "/dashboard"):
            assert (await client.get(org + path, headers=owner.headers)).status_code == 200
        long_reads = [s for s in seen["threads"] if "tasks" in s]
        hot_reads = [s for s in seen["inline"] if "tasks" in s]
        assert len(long_reads) >= 2
        assert hot_reads == []
        seen["threads"].clear()
        assert (await client.get(f"{org}/tasks", headers=owner.headers)).status_code == 200
        assert seen["threads"] == []
        # A task list filtered by text is a long read too.
        found = await client.get(f"{org}/tasks", params={"q": "findable"}, headers=owner.headers)
        assert [task["title"] for task in found.json()["items"]] == ["findable"]
        assert [s for s in seen["threads"] if "tasks" in s]
    finally:
        for engine, listener in listeners:
            event.remove(engine.sync_engine, "before_cursor_execute", listener)


async def test_search_pages_through_equal_ranks_without_loss_or_repeats(client: httpx.AsyncClient) -> None:
    """Identical rows rank equally within their kind: paging one or two at a
    time walks the same order as one page, every hit exactly once."""
    owner = await register(client)
    org = f"{API}/orgs/{owner.personal_org_id}"
    h = owner.headers
    for _ in range(4):
        await client.post(f"{org}/tasks", json={"title": "Comet"}, headers=h)
        await client.post(f"{org}/projects", json={"name": "Comet"}, headers=h)
    whole = (await client.get(f"{org}/search", params={"q": "comet", "limit": 50}, headers=h)).json()["items"]
    assert len(whole) == 8
    for limit in (1, 2, 3):
        walked, cursor = [], None
        while True:
            params = {"q": "comet", "limit": limit, **({"cursor": cursor} if cursor else {})}
            page = (await client.get(f"{org}/search", params=params, headers=h)).json()
            walked.extend(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert [(hit["kind"], hit["id"]) for hit in walked] == [(hit["kind"], hit["id"]) for hit in whole]


async def test_search_ranks_each_kinds_newest_matches(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each kind ranks only its org's newest RANK_WINDOW matches: the best
    match outside the window is not found, the window's are, best first; a
    deleted task does not take a place in the window."""
    monkeypatch.setattr(repository, "RANK_WINDOW", 3)
    owner = await register(client)
    org = f"{API}/orgs/{owner.personal_org_id}"
    h = owner.headers
    titles = ["Rocket rocket rocket rocket", "Rocket two", "Rocket rocket three", "Rocket four", "Rocket gone"]
    created = [(await client.post(f"{org}/tasks", json={"title": t}, headers=h)).json() for t in titles]
    assert (await client.delete(f"{org}/tasks/{created[-1]['id']}", headers=h)).status_code == 204
    outsider = await register(client)
    for _ in range(3):  # another org's newer matches take no place in this org's window
        await client.post(
            f"{API}/orgs/{outsider.personal_org_id}/tasks", json={"title": "Rocket"}, headers=outsider.headers
        )

    hits = (await client.get(f"{org}/search", params={"q": "rocket"}, headers=h)).json()["items"]
    assert [hit["title"] for hit in hits] == ["Rocket rocket three", "Rocket two", "Rocket four"]
