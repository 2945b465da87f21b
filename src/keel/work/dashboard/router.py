from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from keel.core.auth import ViewerScope
from keel.core.openapi import problem_responses
from keel.core.platform import request_platform
from keel.core.transactions import transactional_router
from keel.work.dashboard import service
from keel.work.dashboard.schemas import Dashboard

router = transactional_router(
    prefix="/orgs/{org_id}/dashboard",
    long_reads=True,
    tags=["dashboard"],
    responses=problem_responses(401, 403, 404, 422, 429),
)


@router.get("", response_model=Dashboard)
async def dashboard(
    request: Request,
    scope: ViewerScope,
    active_within_s: Annotated[int | None, Query(ge=60, le=30 * 24 * 3600)] = None,
) -> Dashboard:
    """Task counts by status, overdue tasks, and members active within the cutoff
    (default KEEL_ACTIVE_MEMBER_CUTOFF_S). Auth: viewer+."""
    cutoff = active_within_s or request_platform(request).settings.auth.active_member_cutoff_s
    return await service.dashboard(scope.session, scope, active_within_s=cutoff)
