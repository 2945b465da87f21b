"""Tasks: org-scoped, filtered and sorted from allow-lists, keyset-paginated,
embedding project and assignee summaries in the same query."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.errors import NotFound, ValidationFailed
from keel.core.org_resources import OrgResources
from keel.core.pagination import CursorCodec, paged
from keel.core.principal import OrgScope, Role
from keel.identity.orgs import service as orgs
from keel.work.projects import service as projects
from keel.work.tasks.models import Task
from keel.work.tasks.repository import TaskFilter, TaskRepository
from keel.work.tasks.schemas import TaskCreate, TaskRead, TaskUpdate


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, extra={"errors": [{"loc": ["body", field], "msg": message}]})


async def _reference_names(
    session: AsyncSession, scope: OrgScope, *, project_id: uuid.UUID | None, assignee_id: uuid.UUID | None
) -> tuple[str | None, str | None]:
    """The names of the referenced project and assignee, which must belong to
    this org (422 otherwise, without saying whether they exist elsewhere)."""
    project_name = assignee_name = None
    if project_id is not None:
        project_name = await projects.name_of(session, scope, project_id)
        if project_name is None:
            raise _invalid("project_id", "No such project in this organization.")
    if assignee_id is not None:
        assignee_name = await orgs.member_name(session, scope.org_id, assignee_id)
        if assignee_name is None:
            raise _invalid("assignee_id", "The assignee is not a member of this organization.")
    return project_name, assignee_name


TaskData = dict[str, Any]
"""A task as plain values shaped exactly like TaskRead (reads render it
without a validation pass; see keel.core.accelerators.json_responses)."""
_READ_FIELDS = tuple(TaskRead.model_fields)


def _task_data(row: dict[str, Any]) -> TaskData:
    """A task from its read row (the task's columns and the joined names):
    the embedded project and assignee need no query of their own."""
    project = None if row["project_name"] is None else {"id": row["project_id"], "name": row["project_name"]}
    assignee = None if row["assignee_name"] is None else {"id": row["assignee_id"], "name": row["assignee_name"]}
    row["project"], row["assignee"] = project, assignee
    return {name: row[name] for name in _READ_FIELDS}


def _task(row: dict[str, Any]) -> TaskRead:
    return TaskRead.model_validate(_task_data(row))


async def _read_one(session: AsyncSession, scope: OrgScope, task_id: uuid.UUID) -> TaskData:
    row = await TaskRepository(session, scope).read_one(task_id)
    if row is None:
        raise NotFound("Task not found.")
    return _task_data(row)


# The shared life cycle, handing back the Task row; reads then go through _read_one.
resources: OrgResources[Task, Task] = OrgResources(
    TaskRepository, lambda task: task, event_prefix="task", noun="Task", event_fields=("title", "status")
)


async def create_task(session: AsyncSession, scope: OrgScope, data: TaskCreate) -> TaskRead:
    scope.require(Role.MEMBER)
    names = await _reference_names(session, scope, project_id=data.project_id, assignee_id=data.assignee_id)
    task = await resources.create(session, scope, data.model_dump())
    # Every value is known: the response is built from them, not read back.
    project_name, assignee_name = names
    return _task({**vars(task), "project_name": project_name, "assignee_name": assignee_name})


async def get_task(session: AsyncSession, scope: OrgScope, task_id: uuid.UUID) -> TaskData:
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
) -> tuple[list[TaskData], str | None]:
    descending = sort.startswith("-")
    field = sort.removeprefix("-")
    tasks = TaskRepository(session, scope)
    rows, next_cursor = await paged(
        codec,
        sort,
        cursor,
        limit,
        lambda after: tasks.page(task_filter, sort_field=field, descending=descending, after=after, limit=limit),
        lambda row: [row[field], row["id"]],
    )
    return [_task_data(row) for row in rows], next_cursor


async def update_task(
    session: AsyncSession, scope: OrgScope, task_id: uuid.UUID, changes: TaskUpdate, *, expected: int | None
) -> TaskData:
    scope.require(Role.MEMBER)
    values = changes.model_dump(exclude_unset=True)
    await _reference_names(session, scope, project_id=values.get("project_id"), assignee_id=values.get("assignee_id"))
    task = await resources.update(session, scope, task_id, values, expected=expected)
    return await _read_one(session, scope, task.id)


async def delete_task(session: AsyncSession, scope: OrgScope, task_id: uuid.UUID, *, expected: int | None) -> None:
    await resources.delete(session, scope, task_id, expected=expected)


async def restore_task(session: AsyncSession, scope: OrgScope, task_id: uuid.UUID) -> TaskData:
    task = await resources.restore(session, scope, task_id)
    return await _read_one(session, scope, task.id)
