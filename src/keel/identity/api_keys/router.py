from __future__ import annotations

import uuid

from fastapi import Response

from keel.core.auth import AdminScope
from keel.core.openapi import problem_responses
from keel.core.pagination import DEFAULT_LIMIT, CursorParam, Cursors, LimitParam, Page
from keel.core.request_info import CurrentRequestInfo
from keel.core.transactions import transactional_router
from keel.identity.api_keys import service
from keel.identity.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead

router = transactional_router(
    prefix="/orgs/{org_id}/api-keys", tags=["api keys"], responses=problem_responses(401, 403, 404, 422, 429)
)


@router.post("", response_model=ApiKeyCreated, status_code=201)
async def create_key(body: ApiKeyCreate, scope: AdminScope, origin: CurrentRequestInfo) -> ApiKeyCreated:
    """Create a key; its secret is in this response only. Auth: admin+."""
    return await service.create_key(scope.session, scope, origin, name=body.name, role=body.role)


@router.get("", response_model=Page[ApiKeyRead])
async def list_keys(
    scope: AdminScope,
    cursors: Cursors,
    cursor: CursorParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
) -> Page[ApiKeyRead]:
    """Active keys, without secrets, oldest first. Auth: admin+."""
    items, next_cursor = await service.list_keys(scope.session, scope, cursors, cursor=cursor, limit=limit)
    return Page[ApiKeyRead](items=items, next_cursor=next_cursor)


@router.delete("/{key_id}", status_code=204)
async def revoke_key(key_id: uuid.UUID, scope: AdminScope, origin: CurrentRequestInfo) -> Response:
    """Revoke a key; it stops working on the next request. Auth: admin+."""
    await service.revoke_key(scope.session, scope, origin, key_id=key_id)
    return Response(status_code=204)
