from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Query, Request, Response

from keel.core.accelerators.json_responses import rendered
from keel.core.auth import AdminScope, MemberScope, ViewerScope
from keel.core.openapi import problem_responses
from keel.core.pagination import Cursors, Page
from keel.core.transactions import transactional_router
from keel.core.versioning import etag, parse_if_match
from keel.core.writes import IdempotencyKeyHeader, IfMatchHeader, idempotent
from keel.work.tasks import service
from keel.work.tasks.repository import TaskFilter
from keel.work.tasks.schemas import TaskCreate, TaskListQuery, TaskRead, TaskUpdate

router = transactional_router(
    prefix="/orgs/{org_id}/tasks",
    text_search=True,
    tags=["tasks"],
    responses=problem_responses(400, 401, 403, 404, 422, 429),
)


@router.get("", response_model=Page[TaskRead])
async def list_tasks(
    response: Response,
    scope: ViewerScope,
    cursors: Cursors,
    query: Annotated[TaskListQuery, Query()],
) -> Response:
    """Live tasks, filtered and sorted, with project and assignee embedded; cursor-paginated. Auth: viewer+."""
    task_filter = TaskFilter(
        status=[s.value for s in query.status or ()],
        project_id=query.project_id,
        assignee_id=query.assignee_id,
        due_before=query.due_before,
        due_after=query.due_after,
        q=query.q,
    )
    items, next_cursor = await service.list_tasks(
        scope.session, scope, cursors, task_filter, sort=query.sort, cursor=query.cursor, limit=query.limit
    )
    return rendered({"items": items, "next_cursor": next_cursor}, response)


@router.post("", response_model=TaskRead, status_code=201, responses=problem_responses(409))
async def create_task(
    body: TaskCreate, request: Request, response: Response, scope: MemberScope, key: IdempotencyKeyHeader = None
) -> Response:
    """Create a task; repeatable with Idempotency-Key. Auth: member+."""
    return await idempotent(
        request,
        response,
        scope.session,
        scope.principal,
        key,
        body,
        lambda: service.create_task(scope.session, scope, body),
    )


@router.get("/{task_id}", response_model=TaskRead)
async def get_task(task_id: uuid.UUID, response: Response, scope: ViewerScope) -> Response:
    """One task, with its ETag. Auth: viewer+."""
    task = await service.get_task(scope.session, scope, task_id)
    return rendered(task, response, headers={"ETag": etag(task["version"])})


@router.patch("/{task_id}", response_model=TaskRead, responses=problem_responses(412))
async def update_task(
    task_id: uuid.UUID,
    body: TaskUpdate,
    response: Response,
    scope: MemberScope,
    if_match: IfMatchHeader = None,
) -> Response:
    """Change a task; with If-Match, only if unchanged since read (else 412). Auth: member+."""
    task = await service.update_task(scope.session, scope, task_id, body, expected=parse_if_match(if_match))
    return rendered(task, response, headers={"ETag": etag(task["version"])})


@router.delete("/{task_id}", status_code=204, responses=problem_responses(412))
async def delete_task(task_id: uuid.UUID, scope: MemberScope, if_match: IfMatchHeader = None) -> Response:
    """Soft-delete a task (admins can restore it). Auth: member+."""
    await service.delete_task(scope.session, scope, task_id, expected=parse_if_match(if_match))
    return Response(status_code=204)


@router.post("/{task_id}/restore", response_model=TaskRead)
async def restore_task(task_id: uuid.UUID, response: Response, scope: AdminScope) -> Response:
    """Bring back a soft-deleted task. Auth: admin+."""
    return rendered(await service.restore_task(scope.session, scope, task_id), response)
