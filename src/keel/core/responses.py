"""Responses for hot read paths, rendered straight from database values.

FastAPI validates a returned value against the route's response model and
then serializes it; for a page of fifty tasks that validation pass is about a
millisecond spent re-checking values keel itself just read, typed, from its
own database. A :class:`ReadResponse` renders such values with orjson in the
exact format pydantic uses (UTC as ``Z``, canonical UUIDs). The route still
declares its ``response_model`` — the contract in the OpenAPI document — and
tests re-validate these bodies against it, so the two cannot drift apart.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import orjson
from starlette.responses import JSONResponse, Response

_OPTIONS = orjson.OPT_UTC_Z
_R = TypeVar("_R", bound=Response)


def _other_types(value: Any) -> Any:
    # asyncpg returns its own UUID subclass, which orjson does not take as a UUID.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def render(content: Any) -> bytes:
    """``content`` as a hot read path's JSON (see the module)."""
    return orjson.dumps(content, default=_other_types, option=_OPTIONS)


class ReadResponse(JSONResponse):
    def render(self, content: Any) -> bytes:
        return render(content)


def read_response(content: Any, sub_response: Response, headers: dict[str, str] | None = None) -> ReadResponse:
    """``content`` rendered, with the headers dependencies set (see :func:`with_headers_of`)."""
    return with_headers_of(sub_response, ReadResponse(content, headers=headers))


def with_headers_of(sub_response: Response, rendered: _R) -> _R:
    """``rendered``, with the headers that dependencies set on the route's
    injected ``Response`` (rate-limit headers, say): FastAPI drops those when
    a route returns a response of its own."""
    rendered.headers.raw.extend(sub_response.headers.raw)
    return rendered
