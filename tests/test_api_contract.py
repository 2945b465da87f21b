"""Properties every public API route must have, checked on the app's route table."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute

from keel.config import Settings
from keel.core.platform import platform
from keel.core.schemas import InputModel
from keel.core.transactions import API_PREFIX, TransactionalRoute
from keel.main import create_app


def routes(app: FastAPI) -> list[APIRoute]:
    """Every route the domains installed."""
    return [route for route in platform(app).api_routes if isinstance(route, APIRoute)]


def test_every_body_is_an_input_model(settings: Settings) -> None:
    for route in routes(create_app(settings)):
        for param in route.dependant.body_params:
            annotation = param.field_info.annotation
            assert isinstance(annotation, type), (route.path, annotation)
            assert issubclass(annotation, InputModel), (route.path, annotation)


def test_every_route_is_versioned_transactional_and_documented(settings: Settings) -> None:
    found = routes(create_app(settings))
    assert len(found) >= 20
    for route in found:
        assert route.path.startswith(API_PREFIX)
        assert isinstance(route, TransactionalRoute)
        assert route.description, f"{route.path} has no docstring"
        assert route.response_model is not None or route.status_code == 204, route.path
