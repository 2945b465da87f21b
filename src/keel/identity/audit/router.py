from __future__ import annotations

from typing import Annotated

from fastapi import Query

from keel.core.auth import AdminScope
from keel.core.openapi import problem_responses
from keel.core.pagination import DEFAULT_LIMIT, MAX_LIMIT, Cursors, Page
from keel.core.transactions import transactional_router
from keel.identity.audit import service
from keel.identity.audit.schemas import AuditEventRead

router = transactional_router(prefix="/orgs/{org_id}/audit-log", tags=["audit"])


@router.get(
    "",
    response_model=Page[AuditEventRead],
    responses=problem_responses(400, 401, 403, 404, 422, 429),
)
async def audit_log(
    scope: AdminScope,
    cursors: Cursors,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
) -> Page[AuditEventRead]:
    """Who did what, when, from where — newest first, cursor-paginated. Auth: admin+."""
    events, next_cursor = await service.list_events(scope.session, scope, cursors, cursor=cursor, limit=limit)
    return Page[AuditEventRead](items=[AuditEventRead.model_validate(e) for e in events], next_cursor=next_cursor)
