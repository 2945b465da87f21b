"""Tasks: CRUD, embedding, filters, sorts, keyset pages, ETags, idempotency, events."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter
from sqlalchemy import select

from keel.core.outbox import OutboxEvent
from keel.core.pagination import Page
from keel.core.platform import platform
from keel.work.tasks.schemas import TaskRead
from tests.fixtures.accounts import API, add_member, create_org, register
from tests.fixtures.statements import executed_statements


@pytest.fixture
async def org(client: httpx.AsyncClient) -> dict[str, Any]:
    owner, member, viewer = (
        await register(client, name="Owner"),
        await register(client, name="Mia"),
        await register(client),
    )
    org_id = await create_org(client, owner)
    await add_member(client, org_id, owner, member, "member")
    await add_member(client, org_id, owner, viewer, "viewer")
    return {"id": org_id, "owner": owner, "member": member, "viewer": viewer, "tasks": f"{API}/orgs/{org_id}/tasks"}


async def new_task(client: httpx.AsyncClient, org: dict[str, Any], **fields: Any) -> dict[str, Any]:
    response = await client.post(org["tasks"], json={"title": "A task", **fields}, headers=org["member"].headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_create_read_update_delete_restore(client: httpx.AsyncClient, org: dict[str, Any]) -> None:
    h = org["member"].headers
    project = (await client.post(f"{API}/orgs/{org['id']}/projects", json={"name": "Launch"}, headers=h)).json()
    task = await new_task(
        client,
        org,
        project_id=project["id"],
        assignee_id=org["member"].id,
        priority=3,
        labels=["a", "b"],
        due_at="2030-01-01T10:00:00Z",
        description="details",
    )
    assert task["project"] == {"id": project["id"], "name": "Launch"}
    assert task["assignee"] == {"id": org["member"].id, "name": "Mia"}
    assert task["status"] == "todo"
    assert task["due_at"].startswith("2030-01-01T10:00:00")

    got = await client.get(f"{org['tasks']}/{task['id']}", headers=org["viewer"].headers)
    assert got.status_code == 200
    assert got.headers["etag"] == '"v1"'
    # The creation's answer, built from the values written, is what a read returns.
    assert got.json() == task
    bare = await new_task(client, org, title="Bare")
    assert (await client.get(f"{org['tasks']}/{bare['id']}", headers=h)).json() == bare
    patched = await client.patch(
        f"{org['tasks']}/{task['id']}", json={"status": "done", "assignee_id": None}, headers={**h, "if-match": '"v1"'}
    )
    assert patched.status_code == 200
    assert patched.json()["status"] == "done"
    assert patched.json()["assignee"] is None
    assert patched.headers["etag"] == '"v2"'

    assert (await client.delete(f"{org['tasks']}/{task['id']}", headers=h)).status_code == 204
    assert (await client.get(f"{org['tasks']}/{task['id']}", headers=h)).status_code == 404
    listed = (await client.get(org["tasks"], headers=h)).json()["items"]
    assert task["id"] not in {t["id"] for t in listed}
    assert (await client.post(f"{org['tasks']}/{task['id']}/restore", headers=h)).status_code == 403
    restored = await client.post(f"{org['tasks']}/{task['id']}/restore", headers=org["owner"].headers)
    assert restored.status_code == 200
    assert (await client.get(f"{org['tasks']}/{task['id']}", headers=h)).status_code == 200


@pytest.mark.readiness("work.outbox_events")
async def test_every_change_writes_an_outbox_event(client: httpx.AsyncClient, org: dict[str, Any], app) -> None:  # type: ignore[no-untyped-def]
    task = await new_task(client, org)
    h = org["member"].headers
    await client.patch(f"{org['tasks']}/{task['id']}", json={"title": "renamed"}, headers=h)
    await client.delete(f"{org['tasks']}/{task['id']}", headers=h)
    async with platform(app).database.session(write=False) as session:
        rows = (
            await session.scalars(
                select(OutboxEvent.event_type)
                .where(OutboxEvent.org_id == uuid.UUID(org["id"]), OutboxEvent.event_type.like("task.%"))
                .order_by(OutboxEvent.created_at)
            )
        ).all()
    assert rows == ["task.created", "task.updated", "task.deleted"]


@pytest.mark.readiness("tenancy.cross_org_404")
async def test_other_orgs_tasks_and_references(client: httpx.AsyncClient, org: dict[str, Any]) -> None:
    task = await new_task(client, org)
    outsider = await register(client)
    other_tasks = f"{API}/orgs/{outsider.personal_org_id}/tasks"
    assert (await client.get(f"{other_tasks}/{task['id']}", headers=outsider.headers)).status_code == 404
    assert (
        await client.patch(f"{other_tasks}/{task['id']}", json={"title": "x"}, headers=outsider.headers)
    ).status_code == 404
    assert (await client.get(f"{org['tasks']}/{task['id']}", headers=outsider.headers)).status_code == 404
    # References into another org are refused without revealing them.
    foreign_project = (
        await client.post(
            f"{API}/orgs/{outsider.personal_org_id}/projects", json={"name": "theirs"}, headers=outsider.headers
        )
    ).json()
    for fields in (
        {"project_id": foreign_project["id"]},
        {"assignee_id": outsider.id},
        {"project_id": str(uuid.uuid4())},
    ):
        response = await client.post(org["tasks"], json={"title": "x", **fields}, headers=org["member"].headers)
        assert response.status_code == 422, fields


@pytest.mark.parametrize(
    "body",
    [
        {"title": "x", "status": "doing"},
        {"title": "x", "priority": 9},
        {"title": "x", "priority": -1},
        {"title": "x", "due_at": "tomorrow"},
        {"title": "x", "due_at": "2030-01-01T10:00:00"},  # no timezone: ambiguous
        {"title": ""},
        {"title": "x" * 201},
        {"title": "x", "description": "d" * 20_001},
        {"title": "x", "labels": ["l"] * 21},
        {"title": "x", "labels": ["x" * 51]},
        {"title": "x", "unknown": 1},
        {"title": "x", "assignee_id": "not-a-uuid"},
    ],
)
async def test_bad_task_input_is_422(client: httpx.AsyncClient, org: dict[str, Any], body: dict[str, Any]) -> None:
    response = await client.post(org["tasks"], json=body, headers=org["member"].headers)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


async def test_patch_rejects_unknown_fields_and_nulls(client: httpx.AsyncClient, org: dict[str, Any]) -> None:
    task = await new_task(client, org)
    for body in ({"nope": 1}, {"title": None}, {"status": None}, {"org_id": str(uuid.uuid4())}):
        response = await client.patch(f"{org['tasks']}/{task['id']}", json=body, headers=org["member"].headers)
        assert response.status_code == 422, body


@pytest.mark.parametrize(
    "params",
    [
        {"status": "doing"},
        {"limit": 0},
        {"limit": -5},
        {"limit": 201},
        {"limit": 10**12},
        {"sort": "password"},
        {"sort": "-deleted_at"},
        {"due_before": "soon"},
        {"due_before": "0.5"},  # read as a Unix time by pydantic; the schema says date-time
        {"due_after": "1700000000"},
        {"assignee_id": "1 OR 1=1"},
        {"statuz": "todo"},
        {"org_id": str(uuid.uuid4())},
    ],
)
async def test_bad_list_parameters_are_422(
    client: httpx.AsyncClient, org: dict[str, Any], params: dict[str, Any]
) -> None:
    response = await client.get(org["tasks"], params=params, headers=org["viewer"].headers)
    assert response.status_code == 422, params
    assert response.headers["content-type"] == "application/problem+json"


async def test_filters(client: httpx.AsyncClient, org: dict[str, Any]) -> None:
    h = org["viewer"].headers
    project = (
        await client.post(f"{API}/orgs/{org['id']}/projects", json={"name": "P"}, headers=org["member"].headers)
    ).json()
    a = await new_task(client, org, title="Write the quarterly report", status="blocked", project_id=project["id"])
    b = await new_task(
        client, org, title="Fix 100% CPU bug", assignee_id=org["member"].id, due_at="2030-01-01T00:00:00Z"
    )
    c = await new_task(client, org, title="Plan_offsite", due_at="2031-06-01T00:00:00Z")

    async def ids(**params: Any) -> set[str]:
        response = await client.get(org["tasks"], params=params, headers=h)
        assert response.status_code == 200, response.text
        return {t["id"] for t in response.json()["items"]}

    assert await ids(status="blocked") == {a["id"]}
    assert await ids(status=["blocked", "todo"]) == {a["id"], b["id"], c["id"]}
    assert await ids(project_id=project["id"]) == {a["id"]}
    assert await ids(assignee_id=org["member"].id) == {b["id"]}
    assert await ids(due_before="2030-06-01T00:00:00Z") == {b["id"]}
    assert await ids(due_after="2030-06-01T00:00:00Z") == {c["id"]}
    # q is full-text: whole words, any case, every word required, punctuation ignored.
    assert await ids(q="QUARTERLY") == {a["id"]}
    assert await ids(q="report quarterly") == {a["id"]}
    assert await ids(q="quarterly offsite") == set()
    assert await ids(q="100%") == {b["id"]}
    assert await ids(q="plan") == {c["id"]}
    assert await ids(q="P_an") == set()
    assert await ids(q="%") == set()
    assert await ids(q='"; DROP TABLE tasks; -- NEAR(') == set()


@pytest.mark.readiness("pagination.signed_cursors")
async def test_cursors_are_signed_and_bound_to_their_sort(client: httpx.AsyncClient, org: dict[str, Any]) -> None:
    for index in range(3):
        await new_task(client, org, title=f"t{index}")
    h = org["viewer"].headers
    first = (await client.get(org["tasks"], params={"limit": 1, "sort": "title"}, headers=h)).json()
    cursor = first["next_cursor"]
    assert cursor
    payload, signature = cursor.split(".")
    # Changes the signature's first character, which always carries whole bits of the MAC.
    tampered = payload + "." + ("B" if signature[0] == "A" else "A") + signature[1:]
    for bad in (tampered, payload + ".AAAAAAAAAAAAAAAAAAAAAA", "garbage", "a.b.c", payload):
        response = await client.get(org["tasks"], params={"limit": 1, "sort": "title", "cursor": bad}, headers=h)
        assert response.status_code == 400, bad
        assert response.headers["content-type"] == "application/problem+json"
    other_sort = await client.get(org["tasks"], params={"limit": 1, "sort": "-priority", "cursor": cursor}, headers=h)
    assert other_sort.status_code == 400
    assert "different sort" in other_sort.json()["detail"]


@pytest.mark.readiness("pagination.stable_under_writes")
@pytest.mark.parametrize("sort", ["-created_at", "created_at", "title", "-priority", "updated_at"])
async def test_paging_while_inserting_and_deleting_skips_and_repeats_nothing(
    client: httpx.AsyncClient, org: dict[str, Any], sort: str
) -> None:
    h = org["member"].headers
    originals = [await new_task(client, org, title=f"task {i:02d}", priority=i % 3) for i in range(24)]
    doomed = {t["id"] for t in originals[::5]}
    unchanged = {t["id"] for t in originals} - doomed
    seen: list[str] = []
    cursor = None
    page_number = 0
    while True:
        params: dict[str, str | int] = {"limit": 5, "sort": sort, **({"cursor": cursor} if cursor else {})}
        page = (await client.get(org["tasks"], params=params, headers=h)).json()
        seen.extend(t["id"] for t in page["items"])
        # Between pages other clients insert and delete.
        await new_task(client, org, title=f"inserted {page_number}", priority=1)
        if page_number < len(doomed):
            await client.delete(f"{org['tasks']}/{sorted(doomed)[page_number]}", headers=h)
        page_number += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "an item was served twice"
    assert unchanged <= set(seen), "an unchanged item was skipped"


@pytest.mark.readiness("work.no_n_plus_one")
async def test_a_page_costs_a_constant_number_of_queries(client: httpx.AsyncClient, org: dict[str, Any], app) -> None:  # type: ignore[no-untyped-def]
    h = org["member"].headers
    project = (await client.post(f"{API}/orgs/{org['id']}/projects", json={"name": "P"}, headers=h)).json()
    for index in range(200):
        await new_task(client, org, title=f"n{index}", project_id=project["id"], assignee_id=org["member"].id)
    await client.get(org["tasks"], params={"limit": 1}, headers=h)  # the caller's access is remembered
    async with executed_statements(app) as small_statements:
        small = await client.get(org["tasks"], params={"limit": 2}, headers=h)
    async with executed_statements(app) as statements:
        big = await client.get(org["tasks"], params={"limit": 200}, headers=h)
    small_count, big_count = len(small_statements), len(statements)
    assert len(small.json()["items"]) == 2
    assert len(big.json()["items"]) == 200
    assert all(t["project"]["name"] == "P" and t["assignee"]["name"] == "Mia" for t in big.json()["items"])
    assert 0 < small_count == big_count <= 4, statements


@pytest.mark.readiness("work.optimistic_concurrency")
async def test_stale_if_match_is_412(client: httpx.AsyncClient, org: dict[str, Any]) -> None:
    task = await new_task(client, org)
    url, h = f"{org['tasks']}/{task['id']}", org["member"].headers
    assert (await client.patch(url, json={"title": "one"}, headers={**h, "if-match": '"v1"'})).status_code == 200
    stale = await client.patch(url, json={"title": "two"}, headers={**h, "if-match": '"v1"'})
    assert stale.status_code == 412
    assert (await client.delete(url, headers={**h, "if-match": '"v1"'})).status_code == 412
    # The declared pattern's rule: an Arabic-Indic digit is a digit to Python, not to the pattern.
    for malformed in (b"garbage", '"v\u0663"'.encode(), b'"v-1"', b'"v' + b"9" * 19 + b'"'):
        response = await client.patch(url, json={"title": "x"}, headers={**h, "if-match": malformed})
        assert response.status_code == 400, malformed
    assert (await client.get(url, headers=h)).json()["title"] == "one"
    assert (await client.patch(url, json={"title": "one"}, headers={**h, "if-match": 'W/"v2"'})).status_code == 200


async def test_idempotency_keys_are_printable_ascii(client: httpx.AsyncClient, org: dict[str, Any]) -> None:
    h = org["member"].headers
    for key, status in (("caf\u00e9-1".encode(), 400), (b"tab\there", 400), (b"x" * 256, 422)):
        response = await client.post(org["tasks"], json={"title": "t"}, headers={**h, "idempotency-key": key})
        assert response.status_code == status, key
    accepted = await client.post(org["tasks"], json={"title": "t"}, headers={**h, "idempotency-key": "a b-c_1"})
    assert accepted.status_code == 201


@pytest.mark.readiness("work.optimistic_concurrency")
async def test_concurrent_patches_with_the_same_if_match_one_wins(
    client: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    task = await new_task(client, org)
    url, h = f"{org['tasks']}/{task['id']}", {**org["member"].headers, "if-match": '"v1"'}
    responses = await asyncio.gather(*(client.patch(url, json={"title": f"writer {i}"}, headers=h) for i in range(4)))
    assert sorted(r.status_code for r in responses) == [200, 412, 412, 412]


@pytest.mark.readiness("work.idempotency")
async def test_idempotency_key_replays_the_first_response(client: httpx.AsyncClient, org: dict[str, Any], app) -> None:  # type: ignore[no-untyped-def]
    h = {**org["member"].headers, "idempotency-key": f"create-{uuid.uuid4()}"}
    title = f"once {uuid.uuid4().hex[:6]}"
    first = await client.post(org["tasks"], json={"title": title}, headers=h)
    second = await client.post(org["tasks"], json={"title": title}, headers=h)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json()
    assert second.headers["idempotent-replayed"] == "true"
    different = await client.post(org["tasks"], json={"title": title + "!"}, headers=h)
    assert different.status_code == 422
    listed = (await client.get(org["tasks"], params={"q": title}, headers=h)).json()["items"]
    assert len(listed) == 1
    # Another principal's identical key is its own.
    other = await client.post(
        org["tasks"], json={"title": title}, headers={**org["owner"].headers, "idempotency-key": h["idempotency-key"]}
    )
    assert other.status_code == 201
    assert other.json()["id"] != first.json()["id"]


async def test_soft_deleted_ids_are_404_everywhere(client: httpx.AsyncClient, org: dict[str, Any]) -> None:
    task = await new_task(client, org)
    url, h = f"{org['tasks']}/{task['id']}", org["member"].headers
    await client.delete(url, headers=h)
    assert (await client.get(url, headers=h)).status_code == 404
    assert (await client.patch(url, json={"title": "x"}, headers=h)).status_code == 404
    assert (await client.delete(url, headers=h)).status_code == 404


@pytest.mark.readiness("work.fulltext")
async def test_search_index_follows_updates(client: httpx.AsyncClient, org: dict[str, Any]) -> None:
    task = await new_task(client, org, title="Alpha migration", description="move the database")
    h = org["member"].headers

    async def found(q: str) -> bool:
        items = (await client.get(org["tasks"], params={"q": q}, headers=h)).json()["items"]
        return task["id"] in {t["id"] for t in items}

    assert await found("alpha")
    assert await found("database")
    await client.patch(f"{org['tasks']}/{task['id']}", json={"title": "Beta rollout"}, headers=h)
    assert await found("beta")
    assert not await found("alpha")
    await client.delete(f"{org['tasks']}/{task['id']}", headers=h)
    assert not await found("beta")


@pytest.mark.readiness("api.read_responses_match_models")
async def test_fast_read_bodies_are_exactly_what_the_declared_models_render(
    client: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    """Each task body survives validation against the declared response
    model and comes out of it unchanged, formats included."""
    h = org["member"].headers
    project = (await client.post(f"{API}/orgs/{org['id']}/projects", json={"name": "P"}, headers=h)).json()
    await new_task(client, org, project_id=project["id"], assignee_id=org["member"].id, due_at="2030-01-02T03:04:05Z")
    await new_task(client, org, labels=["a", "b"])
    listed = await client.get(org["tasks"], params={"limit": 1}, headers=h)
    page_model = TypeAdapter(Page[TaskRead])
    assert page_model.dump_python(page_model.validate_json(listed.content), mode="json") == listed.json()
    assert listed.json()["next_cursor"]
    for item in (await client.get(org["tasks"], headers=h)).json()["items"]:
        one = await client.get(f"{org['tasks']}/{item['id']}", headers=h)
        assert TaskRead.model_validate_json(one.content).model_dump(mode="json") == one.json() == item
        assert one.headers["etag"] == f'"v{item["version"]}"'


@pytest.mark.readiness("api.read_responses_match_models")
@pytest.mark.parametrize(
    ("due_at", "shown"),
    [
        ("2030-01-02T03:04:05Z", "2030-01-02T03:04:05Z"),
        ("2030-01-02T03:04:05.100000Z", "2030-01-02T03:04:05.100000Z"),
        ("2030-01-02T03:04:05.000001Z", "2030-01-02T03:04:05.000001Z"),
        ("2030-01-02T08:34:05.123456+05:30", "2030-01-02T03:04:05.123456Z"),
    ],
)
async def test_every_task_answer_shows_a_task_alike(
    client: httpx.AsyncClient, org: dict[str, Any], due_at: str, shown: str
) -> None:
    """A write answers from the values it wrote, a read from the database:
    every answer about a task shows the same body, byte for byte."""
    h = org["member"].headers
    labels = ["ünï", 'a "quoted" \\ label', "🚀"]
    created = await client.post(org["tasks"], json={"title": "Alike", "due_at": due_at, "labels": labels}, headers=h)
    task = created.json()
    assert (task["due_at"], task["labels"]) == (shown, labels)
    one = f"{org['tasks']}/{task['id']}"
    listed = await client.get(org["tasks"], params={"limit": 1}, headers=h)
    got = await client.get(one, headers=h)
    assert listed.json()["items"] == [task]
    assert got.json() == task  # the same values (a creation's answer orders its keys as its model does)

    patched = await client.patch(one, json={"title": "Still alike"}, headers=h)
    assert patched.json()["title"] == "Still alike"
    assert (await client.get(one, headers=h)).content == patched.content
    assert (await client.delete(one, headers=h)).status_code == 204
    restored = await client.post(f"{one}/restore", headers=org["owner"].headers)
    assert (await client.get(one, headers=h)).content == restored.content
    assert TaskRead.model_validate_json(restored.content).model_dump(mode="json") == restored.json()


async def test_a_bad_list_parameter_is_located_and_every_filter_is_documented(
    client: httpx.AsyncClient, org: dict[str, Any]
) -> None:
    response = await client.get(org["tasks"], params={"limit": 0, "sort": "title"}, headers=org["viewer"].headers)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["errors"]] == [["query", "limit"]]
    operation = (await client.get("/openapi.json")).json()["paths"]["/api/v1/orgs/{org_id}/tasks"]["get"]
    documented = {(parameter["in"], parameter["name"]) for parameter in operation["parameters"]}
    filters = {"status", "project_id", "assignee_id", "due_before", "due_after", "q", "sort", "cursor", "limit"}
    assert documented == {("path", "org_id")} | {("query", name) for name in filters}


@pytest.mark.readiness("api.no_500_on_valid_syntax")
@pytest.mark.parametrize("instant", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59"])
async def test_an_instant_with_no_utc_equivalent_is_a_located_422(
    client: httpx.AsyncClient, org: dict[str, Any], instant: str
) -> None:
    """Well-formed timestamps whose offset carries them past year 9999 or
    before year 1 in UTC: refused where they were sent, never a 500."""
    h = org["member"].headers
    created = await client.post(org["tasks"], json={"title": "Edge", "due_at": instant}, headers=h)
    assert created.status_code == 422
    assert [error["loc"] for error in created.json()["errors"]] == [["body", "due_at"]]
    task = await new_task(client, org)
    patched = await client.patch(f"{org['tasks']}/{task['id']}", json={"due_at": instant}, headers=h)
    assert patched.status_code == 422
    for name in ("due_before", "due_after"):
        listed = await client.get(org["tasks"], params={name: instant}, headers=h)
        assert listed.status_code == 422
        assert [error["loc"] for error in listed.json()["errors"]] == [["query", name]]
