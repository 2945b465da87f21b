"""Accelerator: hot read responses rendered straight from database values.

FastAPI validates a returned value against the route's response model and
then serializes it; for a page of fifty tasks that validation pass re-checks
values keel itself just read, typed, from its own database. A
:class:`RenderedJSON` writes such values with orjson in the format pydantic
writes them (UTC as ``Z``, canonical UUIDs). The route still declares its
``response_model`` (the contract in the OpenAPI document), and tests
re-validate these bodies against it, so the two cannot drift apart. Kept
while the A/B in docs/performance.md shows a target missed without it.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.responses import JSONResponse, Response

_OPTIONS = orjson.OPT_UTC_Z


def _other_types(value: Any) -> Any:
    # asyncpg returns its own UUID subclass, which orjson does not take as a UUID.
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class RenderedJSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, default=_other_types, option=_OPTIONS)


def rendered(content: Any, sub_response: Response, headers: dict[str, str] | None = None) -> RenderedJSON:
    """``content`` rendered, with the headers dependencies set on the route's
    injected ``Response`` (rate-limit headers, say), which FastAPI drops when
    a route returns a response of its own."""
    answer = RenderedJSON(content, headers=headers)
    answer.headers.raw.extend(sub_response.headers.raw)
    return answer
