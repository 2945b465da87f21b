"""The request boundary: one session per request, committed once.

Services only ``flush()``. ``TransactionalRoute`` commits after the handler
has produced its response and before that response is sent, so a client
never sees success for a write that did not commit; any error rolls back.
A read request's session runs in autocommit and is simply closed; a read's
rate-limit count may run alongside it and is settled before the reply.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.routing import APIRoute
from sqlalchemy.ext.asyncio import AsyncSession
from starlette._utils import get_route_path
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from keel.core.db import Database
from keel.core.direct_handler import direct_handler
from keel.core.errors import KeelError, ValidationFailed
from keel.core.query_models import query_models
from keel.core.ratelimit import abandon_deferred_count, allow_deferred_count, settle_deferred_count

API_PREFIX = "/api/v1"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SESSION_SCOPE_KEY = "keel.db_session"


def is_write_request(request: Request) -> bool:
    return request.method not in _SAFE_METHODS


async def request_session(request: Request) -> AsyncSession:
    """The request's session, opened on first use (write-locking for writes)."""
    session: AsyncSession | None = request.scope.get(_SESSION_SCOPE_KEY)
    if session is None:
        database: Database = request.app.state.database
        session = database.session(write=is_write_request(request))
        request.scope[_SESSION_SCOPE_KEY] = session
    return session


DbSession = Annotated[AsyncSession, Depends(request_session)]


async def _finish(request: Request, *, commit: bool) -> None:
    session: AsyncSession | None = request.scope.pop(_SESSION_SCOPE_KEY, None)
    if session is None:
        return
    if not is_write_request(request):
        # A read session runs in autocommit on both backends: there is nothing
        # to commit or roll back, only the connection to hand back, if it took
        # one (prepared reads borrow one per statement instead).
        if session.in_transaction():
            await session.close()
        return
    if commit:
        try:
            await session.commit()  # ends the transaction and hands the connection back
        except BaseException:
            await session.close()
            raise
        return
    try:
        await session.rollback()
    finally:
        await session.close()


class TransactionalRoute(APIRoute):
    """An APIRoute whose handler commits the request session before replying."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        fastapi_handle = super().get_route_handler()
        handle = direct_handler(self, fastapi_handle) or fastapi_handle

        async def handle_in_transaction(request: Request) -> Response:
            reading = not is_write_request(request)
            if reading:
                allow_deferred_count(request)
            try:
                response = await handle(request)
            except BaseException as exc:
                await _finish(request, commit=isinstance(exc, KeelError) and exc.keep_changes)
                if reading:
                    if isinstance(exc, Exception):
                        await settle_deferred_count(request, None)
                    else:
                        abandon_deferred_count(request)
                raise
            await _finish(request, commit=response.status_code < 400)
            if reading:
                await settle_deferred_count(request, response)
            return response

        return handle_in_transaction


class _ApiRoute(TransactionalRoute):
    """A public API route: also refuses query parameters it does not declare,
    and documents those its query models (``core.query_models``) declare."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        documented = [parameter for model in query_models(self.dependant) for parameter in model.openapi_parameters]
        if documented:
            extra = dict(self.openapi_extra or {})
            extra["parameters"] = [*extra.get("parameters", []), *documented]
            self.openapi_extra = extra

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        declared_by_models = (model.names for model in query_models(self.dependant))
        known_query_names = frozenset(_query_names(self.dependant)).union(*declared_by_models)

        async def handle_strictly(request: Request) -> Response:
            if request.scope["query_string"]:
                _refuse_unknown_query_params(request, known_query_names)
            return await handle(request)

        return handle_strictly


def transactional_router(prefix: str, **options: Any) -> PrefixedRouter:
    """A router for the public API: under /api/v1, routes in the request transaction.

    The full prefix is baked into each route (not added when including), so a
    route's own path is its template in logs and metrics; and FastAPI keeps
    each route's class when including, so every domain router is built here
    (``keel.api`` checks it).
    """
    return PrefixedRouter(prefix=API_PREFIX + prefix, route_class=_ApiRoute, **options)


class PrefixedRouter(APIRouter):
    """A router that turns away a request for a path none of its routes has
    with one regex, instead of asking each route in turn (the app tries the
    domain routers one after another on every request, and FastAPI asks each
    route twice: a task request went past the orgs router's ten checks)."""

    def __init__(self, *, prefix: str, **options: Any) -> None:
        super().__init__(prefix=prefix, **options)
        static_parts = re.split(r"\{[^}]+\}", prefix)
        self._prefix_pattern = re.compile("[^/]+".join(map(re.escape, static_parts)) + "(?:/|$)")
        self._paths_of: tuple[int, re.Pattern[str]] | None = None

    def _paths(self) -> re.Pattern[str]:
        """Any of the routes' paths (routes are added after construction)."""
        if self._paths_of is None or self._paths_of[0] != len(self.routes):
            patterns = [getattr(route, "path_regex", None) for route in self.routes]
            if all(patterns):
                # One alternation; named groups become plain ones (names repeat across routes).
                unnamed = {re.sub(r"\(\?P<\w+>", "(?:", pattern.pattern) for pattern in patterns if pattern}
                paths = re.compile("|".join(f"(?:{pattern})" for pattern in sorted(unnamed)))
            else:
                paths = self._prefix_pattern
            self._paths_of = (len(self.routes), paths)
        return self._paths_of[1]

    def owns(self, route_path: str) -> bool:
        """Whether ``route_path`` (the request's, see ``get_route_path``) is
        one of this router's routes' paths."""
        return self._paths().match(route_path) is not None

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if not self.owns(get_route_path(scope)):
            return Match.NONE, {}
        return super().matches(scope)


def _query_names(dependant: Any) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _refuse_unknown_query_params(request: Request, known: frozenset[str]) -> None:
    """A query parameter the route does not declare is a 422, not silently ignored
    (a misspelt filter must not return the unfiltered list). Checked by the
    route itself rather than as a dependency: a dependency level costs FastAPI
    more to solve than this check."""
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise ValidationFailed(
            "Unknown query parameters.",
            extra={"errors": [{"loc": ["query", name], "msg": "not a parameter of this route"} for name in unknown]},
        )
