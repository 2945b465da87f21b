"""HTTP glue for safe writes: Idempotency-Key on POST, If-Match on PATCH/DELETE."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Header, Request
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from keel.core.idempotency import KEY_PATTERN, MAX_KEY_LENGTH, request_fingerprint, run_once
from keel.core.principal import Principal
from keel.core.versioning import IF_MATCH_PATTERN

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=MAX_KEY_LENGTH,
        description="Repeat a POST safely: the same key and body within 24 h return the first response.",
        # Declared, and checked by run_once (a malformed key is a 400).
        json_schema_extra={"pattern": "^" + KEY_PATTERN.pattern + "$"},
    ),
]
IfMatchHeader = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='Only act if the resource is still at this ETag ("v3").',
        json_schema_extra={"pattern": IF_MATCH_PATTERN},  # checked by parse_if_match (400)
    ),
]


async def idempotent(
    request: Request,
    response: Response,
    session: AsyncSession,
    principal: Principal,
    key: str | None,
    body: BaseModel,
    action: Callable[[], Awaitable[BaseModel]],
    *,
    status_code: int = 201,
) -> Response:
    stored = await run_once(
        session,
        owner=principal.subject,
        key=key,
        fingerprint=lambda: request_fingerprint(request.method, request.scope["path"], body),
        status_code=status_code,
        action=action,
    )
    headers = {"Idempotent-Replayed": "true" if stored.replayed else "false"}
    rendered = Response(stored.body, status_code=stored.status_code, media_type="application/json", headers=headers)
    # FastAPI drops the headers dependencies set on the injected response
    # (rate-limit headers, say) when a route returns a response of its own.
    rendered.headers.raw.extend(response.headers.raw)
    return rendered
