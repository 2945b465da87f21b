"""The public API's one-match dispatch, beside FastAPI's own routing."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI
from starlette.routing import Match

from keel.core.dispatch import ApiDispatch
from keel.main import create_app
from tests.fixtures import routes
from tests.fixtures.things import things_routers


def _things_app() -> tuple[FastAPI, ApiDispatch]:
    outer, inner = things_routers()
    app = FastAPI()
    dispatch = ApiDispatch([outer, inner])
    app.router.routes.append(dispatch)
    app.include_router(outer)
    app.include_router(inner)
    return app, dispatch


def _scope(method: str, path: str, kind: str = "http") -> dict[str, Any]:
    return {"type": kind, "method": method, "path": path, "root_path": "", "headers": [], "query_string": b""}


def test_only_a_full_match_is_taken() -> None:
    _, dispatch = _things_app()
    match, child_scope = dispatch.matches(_scope("GET", "/api/v1/things/a/parts"))
    assert match is Match.FULL
    assert child_scope["route"].path == "/api/v1/things/{thing_id}/parts"
    assert child_scope["path_params"] == {"thing_id": "a"}
    # Another method, another path, a websocket: FastAPI's routing answers them.
    for scope in (
        _scope("DELETE", "/api/v1/things/a"),
        _scope("GET", "/api/v1/things/a/other"),
        _scope("GET", "/api/v1/things/a", kind="websocket"),
        _scope("GET", "/health/live"),  # outside the API's prefix
    ):
        assert dispatch.matches(scope) == (Match.NONE, {})


async def test_requests_get_the_answers_fastapi_routing_gives() -> None:
    app, _ = _things_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.get("/api/v1/things/a")).json() == {"thing": "a"}
        assert (await client.get("/api/v1/things/a/parts")).json() == {"parts of": "a"}
        refused = await client.delete("/api/v1/things/a")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET"
        assert (await client.get("/api/v1/things/a/other")).status_code == 404


def test_keel_dispatches_its_api_unless_tracing_names_spans_by_route(make_settings) -> None:  # type: ignore[no-untyped-def]
    plain = create_app(make_settings(), routers=[routes.router])
    assert sum(isinstance(route, ApiDispatch) for route in plain.router.routes) == 1
    # First: an API request is not offered to the operational routes before it.
    assert isinstance(plain.router.routes[0], ApiDispatch)
    traced = create_app(make_settings(), routers=[routes.router], telemetry={"tracer_provider": None})
    assert not any(isinstance(route, ApiDispatch) for route in traced.router.routes)
