"""Tasks: org-scoped, filtered and sorted from allow-lists, keyset-paginated,
embedding project and assignee summaries in a constant number of queries."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.errors import NotFound, ValidationFailed
from keel.core.org_resources import OrgResources
from keel.core.pagination import CursorCodec, paged
from keel.core.principal import OrgScope, Role
from keel.identity.orgs import service as orgs
from keel.identity.users import service as users
from keel.work.projects import service as projects
from keel.work.tasks import repository
from keel.work.tasks.models import Task
from keel.work.tasks.repository import TaskFilter
from keel.work.tasks.schemas import TaskCreate, TaskRead, TaskUpdate


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, extra={"errors": [{"loc": ["body", field], "msg": message}]})


async def _check_references(
    session: AsyncSession, scope: OrgScope, *, project_id: uuid.UUID | None, assignee_id: uuid.UUID | None
) -> None:
    """Referenced projects and assignees must belong to this org (422 otherwise,
    without saying whether they exist elsewhere)."""
    if project_id is not None and not await projects.exists(session, scope, project_id):
        raise _invalid("project_id", "No such project in this organization.")
    if assignee_id is not None and not await orgs.is_member(session, scope.org_id, assignee_id):
        raise _invalid("assignee_id", "The assignee is not a member of this organization.")


# One validation call for a whole page: pydantic-core builds the models in
# Rust, several times faster than one Python constructor call per task.
_TASK_READS = TypeAdapter(list[TaskRead])


async def _read(session: AsyncSession, tasks: Sequence[Row[Any]]) -> list[TaskRead]:
    """TaskReads from read rows (project name joined in): one more query, for
    the assignees, whatever the number of tasks."""
    assignees = await users.summaries(session, {t.assignee_id for t in tasks if t.assignee_id})
    return _TASK_READS.validate_python(
        [
            {
                "id": task.id,
                "org_id": task.org_id,
                "title": task.title,
                "description": task.description,
                "status": task.status,
                "priority": task.priority,
                "project": (
                    {"id": task.project_id, "name": task.project_name} if task.project_name is not None else None
                ),
                "assignee": assignees.get(task.assignee_id) if task.assignee_id else None,
                "due_at": task.due_at,
                "labels": task.labels,
                "created_by_id": task.created_by_id,
                "created_at": task.created_at,
                "updated_at": task.updated_at,
                "version": task.version,
            }
            for task in tasks
        ]
    )


async def _read_one(session: AsyncSession, scope: OrgScope, task_id: uuid.UUID) -> TaskRead:
    row = await repository.read_one(session, scope, task_id)
    if row is None:
        raise NotFound("Task not found.")
    return (await _read(session, [row]))[0]


# The shared life cycle, handing back the Task row; reads then go through _read_one.
resources: OrgResources[Task, Task] = OrgResources(
    Task, lambda task: task, event_prefix="task", noun="Task", event_fields=("title", "status")
)


async def create_task(session: AsyncSession, scope: OrgScope, data: TaskCreate) -> TaskRead:
    scope.require(Role.MEMBER)
    await _check_references(session, scope, project_id=data.project_id, assignee_id=data.assignee_id)
    task = await resources.create(session, scope, data.model_dump())
    return await _read_one(session, scope, task.id)


async def get_task(session: AsyncSession, scope: OrgScope, task_id: uuid.UUID) -> TaskRead:
    return await _read_one(session, scope, task_id)


async def list_tasks(
    session: AsyncSession,
    scope: OrgScope,
    codec: CursorCodec,
    task_filter: TaskFilter,
    *,
    sort: str,
    cursor: str | None,
    limit: int,
) -> tuple[list[TaskRead], str | None]:
    descending = sort.startswith("-")
    field = sort.removeprefix("-")
    rows, next_cursor = await paged(
        codec,
        sort,
        cursor,
        limit,
        lambda after: repository.page(
            session, scope, task_filter, sort_field=field, descending=descending, after=after, limit=limit
        ),
        lambda row: [getattr(row, field), row.id],
    )
    return await _read(session, rows), next_cursor


async def update_task(
    session: AsyncSession, scope: OrgScope, task_id: uuid.UUID, changes: TaskUpdate, *, expected: int | None
) -> TaskRead:
    scope.require(Role.MEMBER)
    values = changes.model_dump(exclude_unset=True)
    await _check_references(session, scope, project_id=values.get("project_id"), assignee_id=values.get("assignee_id"))
    task = await resources.update(session, scope, task_id, values, expected=expected)
    return await _read_one(session, scope, task.id)


async def delete_task(session: AsyncSession, scope: OrgScope, task_id: uuid.UUID, *, expected: int | None) -> None:
    await resources.delete(session, scope, task_id, expected=expected)


async def restore_task(session: AsyncSession, scope: OrgScope, task_id: uuid.UUID) -> TaskRead:
    task = await resources.restore(session, scope, task_id)
    return await _read_one(session, scope, task.id)
