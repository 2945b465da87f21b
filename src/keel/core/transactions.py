"""The request boundary: one session per request, committed once.

Services only ``flush()``. ``TransactionalRoute`` commits after the handler
has produced its response and before that response is sent, so a client
never sees success for a write that did not commit; any error rolls back.
A read request's session runs in autocommit and is simply closed.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from keel.core.errors import KeelError, ValidationFailed, stale_connection
from keel.core.openapi import problem_responses
from keel.core.platform import request_platform

API_PREFIX = "/api/v1"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SESSION_SCOPE_KEY = "keel.db_session"
_LONG_READS_SCOPE_KEY = "keel.long_reads"


def is_write_request(request: Request) -> bool:
    return request.method not in _SAFE_METHODS


async def request_session(request: Request) -> AsyncSession:
    """The request's session, opened on first use (write-locking for writes;
    off the event loop on SQLite for a route of long reads)."""
    session: AsyncSession | None = request.scope.get(_SESSION_SCOPE_KEY)
    if session is None:
        database = request_platform(request).database
        write = is_write_request(request)
        long_reads = not write and request.scope.get(_LONG_READS_SCOPE_KEY, False)
        session = database.session(write=write, long_reads=long_reads)
        request.scope[_SESSION_SCOPE_KEY] = session
    return session


DbSession = Annotated[AsyncSession, Depends(request_session)]


async def _finish(request: Request, *, commit: bool) -> None:
    session: AsyncSession | None = request.scope.pop(_SESSION_SCOPE_KEY, None)
    if session is None:
        return
    try:
        if commit and is_write_request(request):
            await session.commit()
    finally:
        await session.close()  # rolls back whatever was not committed


class TransactionalRoute(APIRoute):
    """An APIRoute whose handler commits the request session before replying.

    A read that meets a pooled connection the database has closed (after a
    restart or failover) runs once more, on a fresh connection: the pool
    drops every connection older than the failure, so only a database still
    down answers 503. The retry counts against the caller's rate limit again.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handle_once(request: Request) -> Response:
            try:
                response = await handle(request)
            except BaseException as exc:
                await _finish(request, commit=isinstance(exc, KeelError) and exc.keep_changes)
                raise
            await _finish(request, commit=response.status_code < 400)
            return response

        async def handle_in_transaction(request: Request) -> Response:
            try:
                return await handle_once(request)
            except Exception as exc:
                if is_write_request(request) or not stale_connection(exc):
                    raise
            return await handle_once(request)

        return handle_in_transaction


class ApiRoute(TransactionalRoute):
    """A public API route: also refuses query parameters it does not declare
    (a misspelt filter must not return the unfiltered list)."""

    long_reads = False
    # Query parameters that make a request's reads long ones (a full-text filter).
    long_read_params: tuple[str, ...] = ()

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        known_query_names = frozenset(_query_names(self.dependant))
        long_reads, long_read_params = self.long_reads, self.long_read_params

        async def handle_strictly(request: Request) -> Response:
            if request.scope["query_string"]:
                _refuse_unknown_query_params(request, known_query_names)
                if any(name in request.query_params for name in long_read_params):
                    request.scope[_LONG_READS_SCOPE_KEY] = True
            if long_reads:
                request.scope[_LONG_READS_SCOPE_KEY] = True
            return await handle(request)

        return handle_strictly


class LongReadApiRoute(ApiRoute):
    """An API route whose reads may run long (ranking every match of a common
    word, aggregates over an org): on SQLite they run off the event loop."""

    long_reads = True


class TextSearchApiRoute(ApiRoute):
    """An API route whose reads are long ones when it filters by text (``q``)."""

    long_read_params = ("q",)


def transactional_router(
    prefix: str, *, long_reads: bool = False, text_search: bool = False, **options: Any
) -> APIRouter:
    """A router for the public API: under /api/v1, routes in the request transaction.

    The full prefix is baked into each route (not added when including), so a
    route's own path is its template in logs and metrics; and FastAPI keeps
    each route's class when including, so every domain router is built here
    (``core.api.include_api_routers`` checks it). ``long_reads``: see :class:`LongReadApiRoute`;
    ``text_search``: see :class:`TextSearchApiRoute`.
    """
    route_class = LongReadApiRoute if long_reads else TextSearchApiRoute if text_search else ApiRoute
    # Any API request may be malformed (400), invalid (422), rate limited
    # (429) or met by an unavailable database or overload (503).
    options["responses"] = {**problem_responses(400, 422, 429, 503), **options.get("responses", {})}
    return APIRouter(prefix=API_PREFIX + prefix, route_class=route_class, **options)


def _query_names(dependant: Any) -> set[str]:
    """The query parameters a route declares, one by one or as a model's fields."""
    names: set[str] = set()
    for param in dependant.query_params:
        model = param.field_info.annotation
        if isinstance(model, type) and issubclass(model, BaseModel):
            names |= {field.alias or name for name, field in model.model_fields.items()}
        else:
            names.add(param.alias)
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def _refuse_unknown_query_params(request: Request, known: frozenset[str]) -> None:
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise ValidationFailed(
            "Unknown query parameters.",
            extra={"errors": [{"loc": ["query", name], "msg": "not a parameter of this route"} for name in unknown]},
        )
