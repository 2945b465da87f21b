"""Tasks: org-scoped, filtered and sorted from allow-lists, keyset-paginated,
embedding project and assignee summaries in the same query."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.errors import NotFound, ValidationFailed
from keel.core.org_resources import OrgResources
from keel.core.pagination import CursorCodec, paged
from keel.core.principal import OrgScope, Role
from keel.identity.orgs import service as orgs
from keel.work.projects import service as projects
from keel.work.tasks import repository
from keel.work.tasks.models import Task
from keel.work.tasks.repository import TaskFilter
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


_ID_POSITION = repository.READ_FIELDS.index("id")

TaskData = dict[str, Any]
"""A task as plain values, shaped exactly like TaskRead (hot read paths render
it without a validation pass; see keel.core.responses)."""


# The order _task unpacks a read row in: checked against the repository's at import.
_ROW_FIELDS = (
    "id",
    "org_id",
    "title",
    "description",
    "status",
    "priority",
    "project_id",
    "assignee_id",
    "due_at",
    "labels",
    "created_by_id",
    "created_at",
    "updated_at",
    "version",
    "project_name",
    "assignee_name",
)
if repository.READ_FIELDS != _ROW_FIELDS:
    raise RuntimeError("tasks.service._task no longer matches repository.READ_FIELDS")


def _task(row: Sequence[Any]) -> TaskData:
    # Unpacked by position into one literal: a page builds 50 of these, and
    # zipping names into a dict and reshaping it cost three times as much.
    (
        task_id,
        org_id,
        title,
        description,
        status,
        priority,
        project_id,
        assignee_id,
        due_at,
        labels,
        created_by_id,
        created_at,
        updated_at,
        version,
        project_name,
        assignee_name,
    ) = row
    return {
        "id": task_id,
        "org_id": org_id,
        "title": title,
        "description": description,
        "status": status,
        "priority": priority,
        "due_at": due_at,
        "labels": labels,
        "created_by_id": created_by_id,
        "created_at": created_at,
        "updated_at": updated_at,
        "version": version,
        "project": None if project_name is None else {"id": project_id, "name": project_name},
        "assignee": None if assignee_name is None else {"id": assignee_id, "name": assignee_name},
    }


def _read(tasks: Sequence[Sequence[Any]]) -> list[TaskData]:
    """Tasks from read rows, project and assignee names joined in: no query
    beyond the one that fetched the rows."""
    return [_task(row) for row in tasks]


def _as_read_row(task: Task, project_name: str | None, assignee_name: str | None) -> tuple[Any, ...]:
    """A just-written task shaped like a read row (see repository.READ_FIELDS)."""
    names = {"project_name": project_name, "assignee_name": assignee_name}
    return tuple(names[field] if field in names else getattr(task, field) for field in repository.READ_FIELDS)


async def _read_one(session: AsyncSession, scope: OrgScope, task_id: uuid.UUID) -> TaskData:
    row = await repository.read_one(session, scope, task_id)
    if row is None:
        raise NotFound("Task not found.")
    return _read([row])[0]


# The shared life cycle, handing back the Task row; reads then go through _read_one.
resources: OrgResources[Task, Task] = OrgResources(
    Task, lambda task: task, event_prefix="task", noun="Task", event_fields=("title", "status")
)


async def create_task(session: AsyncSession, scope: OrgScope, data: TaskCreate) -> TaskRead:
    scope.require(Role.MEMBER)
    names = await _reference_names(session, scope, project_id=data.project_id, assignee_id=data.assignee_id)
    task = await resources.create(session, scope, data.model_dump())
    # Every value is known: the response is built from them, not read back.
    return TaskRead.model_validate(_read([_as_read_row(task, *names)])[0])


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
    sort_position = repository.READ_FIELDS.index(field)
    rows, next_cursor = await paged(
        codec,
        sort,
        cursor,
        limit,
        lambda after: repository.page(
            session, scope, task_filter, sort_field=field, descending=descending, after=after, limit=limit
        ),
        lambda row: [row[sort_position], row[_ID_POSITION]],
    )
    return _read(rows), next_cursor


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
