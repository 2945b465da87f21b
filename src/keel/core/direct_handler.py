"""A route's dependencies solved by a plan built once, for simply shaped routes.

FastAPI (0.165) solves a route's dependencies with one generic recursive
function: on every request, for every dependency, it builds the request's
path, query, header and cookie parameters (empty or not), computes a cache
key from the dependency's OAuth scopes, classifies the callable again, and
then reads each path parameter through a chain of per-request annotation
checks. keel's org-scoped reads have three dependencies; that generic work
was about a tenth of the instructions of a page of tasks.

:func:`direct_handler` walks a route's dependency tree once, when the
route is built, and keeps for each level only what it has: its
sub-dependencies, the parameter groups it declares, and the ``Request`` or
``Response`` it takes. Per request it does that and nothing else, in
FastAPI's order (sub-dependencies first, then path, query, header and cookie
parameters), with FastAPI's own ``request_params_to_args`` validating every
parameter — the answers, 422s included, are FastAPI's. A path parameter
typed ``uuid.UUID`` in its canonical spelling is parsed directly (any other
spelling goes through FastAPI, so what is accepted does not change).

Only routes of that shape get a plan: no body, async dependencies that are
not generators, no security scopes or background tasks, and an endpoint
declared to return a ``Response``. Every other route keeps FastAPI's
handler, and so does any request made while the app has dependency
overrides (tests) or FastAPI's request telemetry is recording.
"""

from __future__ import annotations

import inspect
import re
import typing
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import params
from fastapi.dependencies.models import Dependant, _is_async_gen_callable, _is_coroutine_callable, _is_gen_callable
from fastapi.dependencies.utils import request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute, _effective_route_context_var
from fastapi.telemetry import get_telemetry_data
from starlette.requests import Request
from starlette.responses import Response

Handler = Callable[[Request], Coroutine[Any, Any, Response]]
_CANONICAL_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


@dataclass(frozen=True, slots=True)
class _Level:
    """One dependency (or the endpoint): what it takes, and under which names."""

    call: Callable[..., Any]
    name: str | None
    use_cache: bool
    subs: tuple[_Level, ...]
    uuid_path_params: tuple[Any, ...]  # FastAPI's fields, read directly when canonical
    path_params: tuple[Any, ...]  # FastAPI's fields, validated by FastAPI
    query_params: tuple[Any, ...]
    header_params: tuple[Any, ...]
    cookie_params: tuple[Any, ...]
    request_name: str | None
    response_name: str | None

    async def solve(
        self, request: Request, response: Response, cache: dict[Callable[..., Any], Any], errors: list[Any]
    ) -> dict[str, Any]:
        """The values to call this level with; what fails validation goes to ``errors``."""
        values: dict[str, Any] = {}
        for sub in self.subs:
            failed = len(errors)
            sub_values = await sub.solve(request, response, cache, errors)
            if len(errors) > failed:
                continue
            if sub.use_cache and sub.call in cache:
                solved = cache[sub.call]
            else:
                solved = await sub.call(**sub_values)
                cache.setdefault(sub.call, solved)
            if sub.name is not None:
                values[sub.name] = solved
        if self.uuid_path_params:
            path = request.path_params
            for field in self.uuid_path_params:
                raw = path.get(field.alias)
                if isinstance(raw, str) and _CANONICAL_UUID.fullmatch(raw):
                    values[field.name] = uuid.UUID(raw)
                else:
                    self._validate((field,), path, values, errors)
        if self.path_params:
            self._validate(self.path_params, request.path_params, values, errors)
        if self.query_params:
            self._validate(self.query_params, request.query_params, values, errors)
        if self.header_params:
            self._validate(self.header_params, request.headers, values, errors)
        if self.cookie_params:
            self._validate(self.cookie_params, request.cookies, values, errors)
        if self.request_name is not None:
            values[self.request_name] = request
        if self.response_name is not None:
            values[self.response_name] = response
        return values

    @staticmethod
    def _validate(fields: Sequence[Any], received: Any, values: dict[str, Any], errors: list[Any]) -> None:
        validated, failed = request_params_to_args(fields, received)
        values.update(validated)
        errors.extend(failed)


def direct_handler(route: APIRoute, fallback: Handler) -> Handler | None:
    """A handler for ``route`` that solves its dependencies by plan (see the
    module), or None when the route is not of the shape a plan covers.

    Called from ``get_route_handler``, as FastAPI builds a handler: for a
    route included in another router, FastAPI builds it with the inclusion's
    view of the route (its dependencies and overrides provider), which is
    used here too."""
    effective = _effective_route_context_var.get()
    if effective is not None and effective.original_route is route:
        route = effective
    if not _returns_response(route.dependant.call):
        return None
    endpoint = _level(route.dependant, root=True)
    if endpoint is None:
        return None
    call = endpoint.call
    overrides_provider = route.dependency_overrides_provider
    name = route.name

    async def handle(request: Request) -> Response:
        if (overrides_provider is not None and overrides_provider.dependency_overrides) or (
            get_telemetry_data() is not None
        ):
            return await fallback(request)
        # The response dependencies may set headers on, as FastAPI makes it.
        sub_response = Response()
        del sub_response.headers["content-length"]
        sub_response.status_code = None  # type: ignore[assignment]
        errors: list[Any] = []
        values = await endpoint.solve(request, sub_response, {}, errors)
        if errors:
            raise RequestValidationError(errors)
        answer = await call(**values)
        if not isinstance(answer, Response):
            raise TypeError(f"{name} is declared to return a Response and returned {type(answer).__name__}")
        return answer

    return handle


def _returns_response(call: Callable[..., Any] | None) -> bool:
    if call is None or not inspect.iscoroutinefunction(call):
        return False
    try:
        returned = typing.get_type_hints(call).get("return")
    except (NameError, TypeError):  # an annotation that does not resolve here
        return False
    return isinstance(returned, type) and issubclass(returned, Response)


def _level(dependant: Dependant, *, root: bool) -> _Level | None:
    call = dependant.call
    # What FastAPI would await as it is: a coroutine callable, not a generator.
    if call is None or not _is_coroutine_callable(call) or _is_gen_callable(call) or _is_async_gen_callable(call):
        return None
    if (
        dependant.body_params
        or dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
        or dependant.own_oauth_scopes
        or dependant.parent_oauth_scopes
        or dependant.concurrency is not None
    ):
        return None
    subs = []
    for sub_dependant in dependant.dependencies:
        sub = _level(sub_dependant, root=False)
        if sub is None:
            return None
        subs.append(sub)
    uuid_params = [field for field in dependant.path_params if _is_plain_uuid(field)]
    return _Level(
        call=call,
        name=None if root else dependant.name,
        use_cache=dependant.use_cache,
        subs=tuple(subs),
        uuid_path_params=tuple(uuid_params),
        path_params=tuple(field for field in dependant.path_params if field not in uuid_params),
        query_params=tuple(dependant.query_params),
        header_params=tuple(dependant.header_params),
        cookie_params=tuple(dependant.cookie_params),
        request_name=dependant.request_param_name,
        response_name=dependant.response_param_name,
    )


def _is_plain_uuid(field: Any) -> bool:
    """A path parameter that is a bare ``uuid.UUID``: no alias, no constraints."""
    info = field.field_info
    return (
        type(info) is params.Path
        and info.annotation is uuid.UUID
        and not info.metadata
        and info.alias in (None, field.name)
        and info.validation_alias in (None, field.name)
    )
