"""One match per request over the public API's routes.

FastAPI keeps each included router as a branch of its own: a request is
offered to every route and branch in turn (the operational routes first),
and the branch that takes it matches its routes twice (once to say it
matches, again to handle), moving route contexts in and out of the request
scope on each try. ``ApiDispatch`` is one route, placed first, that knows
every API route (anything outside the API's prefix it turns away with one
string check): it asks each router's one-regex path check
(``PrefixedRouter.owns``) and then that router's routes, once, and hands
the request to the route that matches path and method. What it does not
match fully — an unknown path, a known path with another method (405) — it
leaves to FastAPI's routing, which answers as before; the routers stay
included, so the OpenAPI document is FastAPI's own, and so are routes added
to a router after the dispatcher was built (they are answered by FastAPI's
routing).

A route handled here runs the handler it was built with (FastAPI's route
API, no include-time wrapping), so keel includes its API routers with no
include-time options. With OpenTelemetry tracing on, FastAPI's routing
names each server span after its route; the dispatcher is then left out.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi.routing import APIRoute
from starlette._utils import get_route_path
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from keel.core.transactions import API_PREFIX, PrefixedRouter


class ApiDispatch(BaseRoute):
    def __init__(self, routers: Sequence[PrefixedRouter]) -> None:
        self._branches = [
            (router, [route for route in router.routes if isinstance(route, APIRoute)]) for router in routers
        ]

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        route_path = get_route_path(scope)
        if not route_path.startswith(API_PREFIX):  # health probes, metrics, docs
            return Match.NONE, {}
        for router, routes in self._branches:
            if not router.owns(route_path):
                continue
            for route in routes:
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    return match, child_scope
        return Match.NONE, {}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The matched APIRoute, which its own matches() put in the scope.
        await scope["route"].handle(scope, receive, send)
