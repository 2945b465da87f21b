"""Properties every public API route must have, checked on the route table."""

from __future__ import annotations

from fastapi.routing import APIRoute

from keel.api import API_PREFIX, api_routers
from keel.core.schemas import InputModel
from keel.core.transactions import TransactionalRoute


def routes() -> list[APIRoute]:
    return [route for router in api_routers() for route in router.routes if isinstance(route, APIRoute)]


def test_every_body_is_an_input_model() -> None:
    for route in routes():
        for param in route.dependant.body_params:
            annotation = param.field_info.annotation
            assert isinstance(annotation, type), (route.path, annotation)
            assert issubclass(annotation, InputModel), (route.path, annotation)


def test_every_route_is_versioned_transactional_and_documented() -> None:
    found = routes()
    assert len(found) >= 20
    for route in found:
        assert route.path.startswith(API_PREFIX)
        assert isinstance(route, TransactionalRoute)
        assert route.description, f"{route.path} has no docstring"
        assert route.response_model is not None or route.status_code == 204, route.path
