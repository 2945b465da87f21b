"""Bad input at the HTTP edge: each gets its problem+json, the process keeps serving."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from keel.config import HttpSettings
from keel.core.middleware.load_shedding import LoadShedder
from keel.main import create_app
from tests.fixtures import routes
from tests.fixtures.databases import database_settings

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert set(body) >= {"type", "title", "status", "detail", "request_id"}
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    return body  # type: ignore[no-any-return]


async def assert_still_serving(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.readiness("http.problem_details")
async def test_unknown_route_is_404_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/no/such/route"), 404)
    assert body["type"] == "urn:keel:problem:not-found"


@pytest.mark.readiness("http.problem_details")
async def test_wrong_method_is_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/health/live")
    assert_problem(response, 405)
    assert "GET" in response.headers["allow"]


@pytest.mark.readiness("http.problem_details")
async def test_405_allow_names_every_method_the_path_serves(client: httpx.AsyncClient) -> None:
    """GET, PATCH and DELETE /me are three routes; a PUT names all three."""
    response = await client.put("/api/v1/me")
    assert_problem(response, 405)
    assert response.headers["allow"] == "DELETE, GET, PATCH"
    options = await client.options("/api/v1/orgs/00000000-0000-0000-0000-000000000000/tasks/x")
    assert options.headers["allow"] == "DELETE, GET, PATCH"


@pytest.mark.readiness("http.validation")
async def test_malformed_json_is_422_without_echo(client: httpx.AsyncClient) -> None:
    payload = b'{"name": "hunter2-secret", '
    response = await client.post("/test/echo", content=payload, headers={"content-type": "application/json"})
    body = assert_problem(response, 422)
    assert body["detail"] == "The request body is not valid JSON."
    assert isinstance(body["errors"], list)
    assert "hunter2-secret" not in response.text
    await assert_still_serving(client)


@pytest.mark.readiness("http.validation")
async def test_invalid_field_is_422_with_locations_and_no_input(client: httpx.AsyncClient) -> None:
    response = await client.post("/test/echo", json={"name": "x" * 60 + "SECRETISH", "count": "many"})
    body = assert_problem(response, 422)
    locations = {tuple(error["loc"]) for error in body["errors"]}  # type: ignore[attr-defined]
    assert locations == {("body", "name"), ("body", "count")}
    assert all(set(error) == {"loc", "msg"} for error in body["errors"])  # type: ignore[attr-defined]
    assert "SECRETISH" not in response.text
    assert "many" not in response.text


@pytest.mark.readiness("http.content_type")
async def test_wrong_content_type_is_415(client: httpx.AsyncClient) -> None:
    response = await client.post("/test/echo", content=b"name=x", headers={"content-type": "text/plain"})
    assert_problem(response, 415)
    json_variant = await client.post(
        "/test/echo", content=b'{"name": "ok"}', headers={"content-type": "application/json; charset=utf-8"}
    )
    assert json_variant.status_code == 200


@pytest.mark.readiness("http.body_limit")
async def test_body_over_limit_by_content_length_is_413(client: httpx.AsyncClient) -> None:
    huge = b'{"name": "' + b"a" * (1024 * 1024) + b'"}'
    response = await client.post("/test/echo", content=huge, headers={"content-type": "application/json"})
    assert_problem(response, 413)
    await assert_still_serving(client)


@pytest.mark.readiness("http.body_limit")
async def test_streamed_body_over_limit_is_413(client: httpx.AsyncClient) -> None:
    """A chunked body has no Content-Length: the limit is enforced on the stream."""

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"name": "'
        for _ in range(40):
            yield b"a" * 32 * 1024
        yield b'"}'

    response = await client.post("/test/echo", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_problem(response, 413)
    await assert_still_serving(client)


@pytest.mark.readiness("http.header_limit")
async def test_huge_header_is_431(client: httpx.AsyncClient) -> None:
    response = await client.get("/health/live", headers={"x-padding": "p" * 20_000})
    assert_problem(response, 431)
    await assert_still_serving(client)


@pytest.mark.readiness("http.request_id")
@pytest.mark.parametrize(
    "sent",
    ["", "a" * 129, "has space", "semi;colon", "<script>", "ünïcode"],
)
async def test_invalid_request_id_is_replaced(client: httpx.AsyncClient, sent: str) -> None:
    response = await client.get("/health/live", headers={"x-request-id": sent.encode("utf-8")})  # type: ignore[arg-type]
    request_id = response.headers["x-request-id"]
    assert request_id != sent
    assert len(request_id) == 32


@pytest.mark.readiness("http.request_id")
async def test_sane_request_id_is_echoed_and_logged(client: httpx.AsyncClient, log_lines: Callable[[], str]) -> None:
    sent = "req-" + "A1._-" * 20
    response = await client.get("/no/such/route", headers={"x-request-id": sent})
    assert response.headers["x-request-id"] == sent
    assert response.json()["request_id"] == sent
    assert f"request_id={sent}" in log_lines()


@pytest.mark.readiness("http.unhandled_500")
async def test_unhandled_exception_is_generic_500_and_logged_with_request_id(
    client: httpx.AsyncClient, log_lines: Callable[[], str]
) -> None:
    response = await client.get("/test/boom", headers={"x-request-id": "boom-1"})
    body = assert_problem(response, 500)
    assert body["detail"] == "An unexpected error occurred."
    assert routes.SECRET_IN_EXCEPTION not in response.text
    assert "Traceback" not in response.text
    assert response.headers["x-content-type-options"] == "nosniff"
    logged = log_lines()
    assert "http.unhandled_error" in logged
    assert "request_id=boom-1" in logged
    await assert_still_serving(client)


async def test_a_failed_statements_parameters_stay_out_of_the_logs(
    client: httpx.AsyncClient, log_lines: Callable[[], str]
) -> None:
    """They hold users' data: neither the error's text nor the traceback's frames show them."""
    response = await client.get("/test/failed-statement")
    assert_problem(response, 500)
    logged = log_lines()
    assert "http.unhandled_error" in logged
    assert "no_such_table" in logged  # the statement is there, for whoever debugs it
    assert routes.SECRET_IN_PARAMETER not in logged
    assert routes.SECRET_IN_PARAMETER not in response.text


@pytest.mark.readiness("http.timeout")
async def test_slow_handler_hits_timeout_504(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(http=HttpSettings(request_timeout_s=0.2))
    client = await make_client(create_app(settings, routers=[routes.router]))
    body = assert_problem(await client.get("/test/slow", params={"seconds": 5}), 504)
    assert "0.2 s" in str(body["detail"])
    fast = await client.get("/test/slow", params={"seconds": 0})
    assert fast.status_code == 200


@pytest.mark.readiness("http.load_shedding")
async def test_requests_beyond_capacity_are_shed_at_once_with_retry_after(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(http=HttpSettings(max_in_flight=2, max_queued=0))
    client = await make_client(create_app(settings, routers=[routes.router]))
    slow = [asyncio.create_task(client.get("/test/slow", params={"seconds": 1})) for _ in range(2)]
    await asyncio.sleep(0.2)
    shed = await client.get("/test/items/1")
    body = assert_problem(shed, 503)
    assert shed.headers["retry-after"] == "1"
    assert "capacity" in str(body["detail"])
    assert (await client.get("/health/live")).status_code == 200  # probes are never shed
    assert [response.status_code for response in await asyncio.gather(*slow)] == [200, 200]
    assert (await client.get("/test/items/1")).status_code == 200


@pytest.mark.readiness("http.load_shedding")
async def test_requests_past_capacity_wait_in_order_for_a_place_then_are_shed(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    """One place, two waiting: the waiters are served in arrival order as the
    place frees; one more than the queue holds is refused at once, and a
    waiter whose wait runs out is refused then."""
    http = HttpSettings(max_in_flight=1, max_queued=2, max_queue_wait_ms=1500)
    client = await make_client(create_app(make_settings(http=http), routers=[routes.router]))
    finished: list[str] = []

    async def slow(name: str, seconds: float) -> int:
        response: httpx.Response = await client.get("/test/slow", params={"seconds": seconds})
        finished.append(name)
        return response.status_code

    holder = asyncio.create_task(slow("holder", 0.5))
    await asyncio.sleep(0.1)
    first = asyncio.create_task(slow("first", 0.3))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(slow("second", 0))
    await asyncio.sleep(0.05)
    refused = await client.get("/test/items/1")  # the queue is full
    assert_problem(refused, 503)
    assert finished == []  # answered at once: the holder still holds its place
    assert (await client.get("/health/live")).status_code == 200  # probes neither wait nor count
    assert list(await asyncio.gather(holder, first, second)) == [200, 200, 200]
    assert finished == ["holder", "first", "second"]

    holder = asyncio.create_task(slow("holder", 3))
    await asyncio.sleep(0.1)
    timed_out = await client.get("/test/items/1")  # waits 1.5 s, then refused
    assert_problem(timed_out, 503)
    assert timed_out.headers["retry-after"] == "1"
    assert await holder == 200
    assert (await client.get("/test/items/1")).status_code == 200


@pytest.mark.readiness("db.pool_exhaustion")
async def test_an_exhausted_pool_is_a_quick_503_not_a_hang(make_settings, make_client, database_url) -> None:  # type: ignore[no-untyped-def]
    database = database_settings(database_url, db_pool_size=1, db_max_overflow=0, db_pool_timeout_s=0.2)
    client = await make_client(create_app(make_settings(database=database), routers=[routes.router]))
    holder = asyncio.create_task(client.get("/test/held", params={"seconds": 1}))
    await asyncio.sleep(0.2)
    busy = await client.get("/test/events/pool-check")
    assert_problem(busy, 503)
    assert busy.headers["retry-after"] == "1"
    assert (await holder).status_code == 200
    assert (await client.get("/test/events/pool-check")).status_code == 200


@pytest.mark.readiness("http.load_shedding")
async def test_a_stalled_event_loop_sheds_new_requests_until_it_catches_up() -> None:
    """CPU-bound overload queues requests before the app sees them: a loop that
    has not come back to its heartbeat for too long refuses new work."""
    shedder = LoadShedder(max_in_flight=100, max_stall_s=0.1)
    api, probe = {"path": "/api/v1/me"}, {"path": "/health/live"}
    assert not shedder.should_shed(api)  # starts the heartbeat
    await asyncio.sleep(0.03)
    assert not shedder.should_shed(api)
    time.sleep(0.2)  # the loop is busy: no heartbeat  # noqa: ASYNC251
    assert not shedder.should_shed(api)  # one stall alone (a checkpoint, a GC pass) is not overload
    await asyncio.sleep(0.001)  # the late heartbeat runs
    time.sleep(0.2)  # and the loop is busy again: sustained  # noqa: ASYNC251
    assert shedder.should_shed(api)
    assert not shedder.should_shed(probe)
    await asyncio.sleep(0.03)
    await asyncio.sleep(0.03)
    assert not shedder.should_shed(api)
