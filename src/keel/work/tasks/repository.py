from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from keel.core import fulltext
from keel.core.db import execute_core
from keel.core.pagination import keyset
from keel.core.principal import OrgScope, scoped_template
from keel.identity.users import public as users
from keel.work.projects.models import Project
from keel.work.tasks.models import Task

# The assignee's name comes from identity, joined into the same statement.
_ASSIGNEE = users.joinable_names("assignee")
# What a task read returns: plain columns (no ORM objects on the hot read
# path), its live project's name and its assignee's name, in one statement.
_READ_COLUMNS: tuple[Any, ...] = (
    Task.id,
    Task.org_id,
    Task.title,
    Task.description,
    Task.status,
    Task.priority,
    Task.project_id,
    Task.assignee_id,
    Task.due_at,
    Task.labels,
    Task.created_by_id,
    Task.created_at,
    Task.updated_at,
    Task.version,
    Project.name.label("project_name"),
    _ASSIGNEE.name.label("assignee_name"),
)
# The same, by name, in order: readers zip rows with it.
READ_FIELDS: tuple[str, ...] = tuple(column.key for column in _READ_COLUMNS)

# The sort orders a client may ask for; each pages by (column, id).
SORT_COLUMNS: dict[str, InstrumentedAttribute[Any]] = {
    "created_at": Task.created_at,
    "updated_at": Task.updated_at,
    "priority": Task.priority,
    "title": Task.title,
}


@dataclass(frozen=True)
class TaskFilter:
    status: Sequence[str] = ()
    project_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None
    q: str | None = None

    def apply(self, statement: Select[Any], dialect: str) -> Select[Any]:
        if self.status:
            statement = statement.where(Task.status.in_(self.status))
        if self.project_id is not None:
            statement = statement.where(Task.project_id == self.project_id)
        if self.assignee_id is not None:
            statement = statement.where(Task.assignee_id == self.assignee_id)
        if self.due_before is not None:
            statement = statement.where(Task.due_at < self.due_before)
        if self.due_after is not None:
            statement = statement.where(Task.due_at >= self.due_after)
        if self.q:
            statement = statement.where(fulltext.matches(dialect, Task.__tablename__, self.q))
        return statement


_LIVE_PROJECT = and_(Project.id == Task.project_id, Project.org_id == Task.org_id, Project.deleted_at.is_(None))


def _with_names(statement: Select[Any]) -> Select[Any]:
    return statement.outerjoin(Project, _LIVE_PROJECT).outerjoin(_ASSIGNEE.source, _ASSIGNEE.id == Task.assignee_id)


def _readable(scope: OrgScope) -> Select[Any]:
    return _with_names(scope.scoped(select(*_READ_COLUMNS), Task))


_READ_ONE = _with_names(scoped_template(select(*_READ_COLUMNS), Task)).where(
    Task.id == bindparam("task_id", required=True)
)


async def read_one(session: AsyncSession, scope: OrgScope, task_id: uuid.UUID) -> Row[Any] | None:
    row: Row[Any] | None = (await execute_core(session, _READ_ONE, scope.params(task_id=task_id))).first()
    return row


def list_statement(
    scope: OrgScope,
    task_filter: TaskFilter,
    *,
    dialect: str,
    sort_field: str,
    descending: bool,
    after: Sequence[Any] | None,
    limit: int,
) -> Select[Any]:
    """The task list query (kept separate so tests can EXPLAIN exactly it)."""
    statement = task_filter.apply(_readable(scope), dialect)
    return keyset(statement, [SORT_COLUMNS[sort_field], Task.id], descending=descending, after=after, limit=limit)


async def page(
    session: AsyncSession,
    scope: OrgScope,
    task_filter: TaskFilter,
    *,
    sort_field: str,
    descending: bool,
    after: Sequence[Any] | None,
    limit: int,
) -> Sequence[Row[Any]]:
    statement = list_statement(
        scope,
        task_filter,
        dialect=session.get_bind().dialect.name,
        sort_field=sort_field,
        descending=descending,
        after=after,
        limit=limit,
    )
    rows: Sequence[Row[Any]] = (await execute_core(session, statement)).all()
    return rows
