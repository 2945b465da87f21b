"""Dependencies solved by plan answer exactly as FastAPI's own solving does."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.routing import BaseRoute

from keel.api import api_routers
from keel.core.direct_handler import direct_handler

_calls: list[str] = []


async def counted(request: Request) -> str:
    _calls.append(request.url.path)
    return "counted"


async def keyed(x_key: Annotated[str, Header()], response: Response, seen: Annotated[str, Depends(counted)]) -> str:
    response.headers["x-from-dependency"] = seen
    return x_key


async def thing(
    thing_id: uuid.UUID,
    key: Annotated[str, Depends(keyed)],
    again: Annotated[str, Depends(counted)],
    response: Response,
    limit: Annotated[int, Query(ge=1, le=5)] = 2,
) -> Response:
    answer = JSONResponse({"thing": str(thing_id), "limit": limit, "key": key, "again": again, "calls": len(_calls)})
    answer.headers.raw.extend(response.headers.raw)
    return answer


class Body(BaseModel):
    name: str


async def with_body(body: Body) -> Response:
    return JSONResponse({"name": body.name})


class DirectRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        fastapi_handle = super().get_route_handler()
        return direct_handler(self, fastapi_handle) or fastapi_handle


def _router(route_class: type[APIRoute]) -> APIRouter:
    router = APIRouter(route_class=route_class)
    router.add_api_route("/things/{thing_id}", thing, methods=["GET"])
    router.add_api_route("/bodies", with_body, methods=["POST"])
    return router


def _app(route_class: type[APIRoute]) -> FastAPI:
    app = FastAPI()
    app.include_router(_router(route_class))
    return app


def _route(routes: Sequence[BaseRoute], path: str, method: str = "GET") -> APIRoute:
    return next(
        route for route in routes if isinstance(route, APIRoute) and route.path == path and method in route.methods
    )


_ID = "0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
_REQUESTS = [
    (f"/things/{_ID}", {"x-key": "k"}),
    (f"/things/{_ID.upper()}?limit=5", {"x-key": "k"}),
    (f"/things/{_ID.replace('-', '')}", {"x-key": "k"}),  # accepted by both, through FastAPI
    (f"/things/{{{_ID}}}", {"x-key": "k"}),
    (f"/things/urn:uuid:{_ID}", {"x-key": "k"}),
    ("/things/0a1b-2c3d4e5f-6071-8293-a4b5c6d7e8f9", {"x-key": "k"}),  # hyphens out of place
    ("/things/0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8_9", {"x-key": "k"}),
    ("/things/0a1b2c3d-4e5f-6071-8293-+4b5c6d7e8f9", {"x-key": "k"}),
    ("/things/not-a-uuid", {"x-key": "k"}),
    (f"/things/{_ID}", {}),  # the dependency's header is missing
    (f"/things/{_ID}?limit=9", {"x-key": "k"}),
    ("/things/nope?limit=x", {}),  # every error, from every level, together
]


async def test_answers_match_fastapis_own_solving() -> None:
    direct_app, fastapi_app = _app(DirectRoute), _app(APIRoute)
    assert direct_handler(_route(_router(DirectRoute).routes, "/things/{thing_id}"), _unused) is not None
    transport = httpx.ASGITransport
    async with (
        httpx.AsyncClient(transport=transport(app=direct_app), base_url="http://t") as direct,
        httpx.AsyncClient(transport=transport(app=fastapi_app), base_url="http://t") as plain,
    ):
        for path, headers in _REQUESTS:
            _calls.clear()
            ours = await direct.get(path, headers=headers)
            calls_ours = len(_calls)
            _calls.clear()
            theirs = await plain.get(path, headers=headers)
            assert (ours.status_code, ours.json()) == (theirs.status_code, theirs.json()), path
            assert ours.headers.get("x-from-dependency") == theirs.headers.get("x-from-dependency"), path
            # A dependency used twice runs once per request, as FastAPI caches it.
            assert calls_ours == len(_calls), path
    assert _calls, "the comparison ran requests that reached the dependencies"


async def test_a_canonical_id_reaches_the_endpoint_as_a_uuid() -> None:
    _calls.clear()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(DirectRoute)), base_url="http://t") as client:
        answer = await client.get(f"/things/{_ID.upper()}", headers={"x-key": "k"})
    assert answer.status_code == 200
    assert answer.json() == {"thing": _ID, "limit": 2, "key": "k", "again": "counted", "calls": 1}
    assert answer.headers["x-from-dependency"] == "counted"


def test_routes_of_other_shapes_keep_fastapis_handler() -> None:
    assert direct_handler(_route(_router(DirectRoute).routes, "/bodies", "POST"), _unused) is None


async def test_dependency_overrides_are_honoured() -> None:
    app = _app(DirectRoute)

    async def overridden(request: Request) -> str:
        return "overridden"

    app.dependency_overrides[counted] = overridden
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        answer = await client.get(f"/things/{_ID}", headers={"x-key": "k"})
    assert answer.json()["again"] == "overridden"
    assert answer.headers["x-from-dependency"] == "overridden"


@pytest.mark.parametrize(
    ("method", "path", "direct"),
    [
        ("GET", "/api/v1/orgs/{org_id}/tasks", True),
        ("GET", "/api/v1/orgs/{org_id}/tasks/{task_id}", True),
        ("POST", "/api/v1/orgs/{org_id}/tasks", False),  # a body: FastAPI reads it
        ("GET", "/api/v1/orgs/{org_id}/projects/{project_id}", False),  # returns a model FastAPI serializes
    ],
)
def test_keels_hot_reads_are_solved_by_plan(method: str, path: str, direct: bool) -> None:
    route = _route([route for router in api_routers() for route in router.routes], path, method)
    assert (direct_handler(route, _unused) is not None) is direct


async def _unused(request: Request) -> Response:
    raise AssertionError("the fallback is not called here")
