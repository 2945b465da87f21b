from __future__ import annotations

import uuid

from fastapi import Request, Response

from keel.core.auth import AdminScope, MemberScope, ViewerScope
from keel.core.openapi import problem_responses
from keel.core.pagination import DEFAULT_LIMIT, CursorParam, Cursors, LimitParam, Page
from keel.core.transactions import DbSession, transactional_router
from keel.core.versioning import etag
from keel.core.writes import IdempotencyKeyHeader, IfMatchHeader, expected_version, idempotent
from keel.work.projects import service
from keel.work.projects.schemas import ProjectCreate, ProjectRead, ProjectUpdate

router = transactional_router(
    prefix="/orgs/{org_id}/projects",
    tags=["projects"],
    responses=problem_responses(400, 401, 403, 404, 422, 429),
)


@router.get("", response_model=Page[ProjectRead])
async def list_projects(
    scope: ViewerScope,
    session: DbSession,
    cursors: Cursors,
    cursor: CursorParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
) -> Page[ProjectRead]:
    """Live projects, newest first, cursor-paginated. Auth: viewer+."""
    items, next_cursor = await service.list_projects(session, scope, cursors, cursor=cursor, limit=limit)
    return Page[ProjectRead](items=items, next_cursor=next_cursor)


@router.post("", response_model=ProjectRead, status_code=201, responses=problem_responses(409))
async def create_project(
    body: ProjectCreate, request: Request, scope: MemberScope, session: DbSession, key: IdempotencyKeyHeader = None
) -> Response:
    """Create a project; repeatable with Idempotency-Key. Auth: member+."""
    return await idempotent(
        request, session, scope.principal, key, body, lambda: service.create_project(session, scope, body)
    )


@router.get("/{project_id}", response_model=ProjectRead)
async def get_project(project_id: uuid.UUID, response: Response, scope: ViewerScope, session: DbSession) -> ProjectRead:
    """One project, with its ETag. Auth: viewer+."""
    project = await service.get_project(session, scope, project_id)
    response.headers["ETag"] = etag(project.version)
    return project


@router.patch("/{project_id}", response_model=ProjectRead, responses=problem_responses(412))
async def update_project(
    project_id: uuid.UUID,
    body: ProjectUpdate,
    response: Response,
    scope: MemberScope,
    session: DbSession,
    if_match: IfMatchHeader = None,
) -> ProjectRead:
    """Change a project; with If-Match, only if unchanged since read (else 412). Auth: member+."""
    project = await service.update_project(session, scope, project_id, body, expected=expected_version(if_match))
    response.headers["ETag"] = etag(project.version)
    return project


@router.delete("/{project_id}", status_code=204, responses=problem_responses(412))
async def delete_project(
    project_id: uuid.UUID, scope: MemberScope, session: DbSession, if_match: IfMatchHeader = None
) -> Response:
    """Soft-delete a project (admins can restore it). Auth: member+."""
    await service.delete_project(session, scope, project_id, expected=expected_version(if_match))
    return Response(status_code=204)


@router.post("/{project_id}/restore", response_model=ProjectRead)
async def restore_project(project_id: uuid.UUID, scope: AdminScope, session: DbSession) -> ProjectRead:
    """Bring back a soft-deleted project. Auth: admin+."""
    return await service.restore_project(session, scope, project_id)
