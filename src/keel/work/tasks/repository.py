from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, select
from sqlalchemy.orm import InstrumentedAttribute

from keel.core import fulltext
from keel.core.pagination import KeysetQuery
from keel.core.principal import scoped_template
from keel.core.repository import OrgRepository
from keel.identity.users import public as users
from keel.work.projects.models import Project
from keel.work.tasks.models import Task

# The assignee's name comes from identity, joined into the same statement.
_ASSIGNEE = users.joinable_names("assignee")
# What a task read returns, by name: the task's columns, its live project's
# name and its assignee's name, in one statement (plain rows, no ORM objects).
_READ_COLUMNS: tuple[Any, ...] = (
    *(column for column in Task.__table__.columns if column.key != "deleted_at"),
    Project.name.label("project_name"),
    _ASSIGNEE.name.label("assignee_name"),
)

# The sort orders a client may ask for; each pages by (column, id).
SORT_COLUMNS: dict[str, InstrumentedAttribute[Any]] = {
    "created_at": Task.created_at,
    "updated_at": Task.updated_at,
    "priority": Task.priority,
    "title": Task.title,
}


# Each filter a list may set, as the condition it adds; its value is bound
# under the filter's name.
_FILTER_CONDITIONS: dict[str, Any] = {
    "status": Task.status.in_(bindparam("status", expanding=True)),
    "project_id": Task.project_id == bindparam("project_id"),
    "assignee_id": Task.assignee_id == bindparam("assignee_id"),
    "due_before": Task.due_at < bindparam("due_before"),
    "due_after": Task.due_at >= bindparam("due_after"),
}


@dataclass(frozen=True)
class TaskFilter:
    status: Sequence[str] = ()
    project_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None
    q: str | None = None

    def values(self) -> dict[str, Any]:
        """The set filters' values, by filter name (without ``q``)."""
        values: dict[str, Any] = {}
        if self.status:
            values["status"] = list(self.status)
        for name in ("project_id", "assignee_id", "due_before", "due_after"):
            value = getattr(self, name)
            if value is not None:
                values[name] = value
        return values


_LIVE_PROJECT = and_(Project.id == Task.project_id, Project.org_id == Task.org_id, Project.deleted_at.is_(None))


def _with_names(statement: Select[Any]) -> Select[Any]:
    return statement.outerjoin(Project, _LIVE_PROJECT).outerjoin(_ASSIGNEE.source, _ASSIGNEE.id == Task.assignee_id)


_READABLE = _with_names(scoped_template(select(*_READ_COLUMNS), Task))
_READ_ONE = _READABLE.where(Task.id == bindparam("task_id", required=True))


@functools.cache  # at most 2^5 filter sets x 4 sorts x 2 directions
def _list_query(filters: frozenset[str], sort_field: str, descending: bool) -> KeysetQuery[Select[Any]]:
    statement = _READABLE.where(*(_FILTER_CONDITIONS[name] for name in sorted(filters)))
    return KeysetQuery.of(statement, [SORT_COLUMNS[sort_field], Task.id], descending=descending)


class TaskRepository(OrgRepository[Task]):
    """Tasks' reads: each task's columns with its project's and assignee's
    names, in one statement; writes are the shared life cycle's."""

    model = Task

    async def read_one(self, task_id: uuid.UUID) -> dict[str, Any] | None:
        """The task's read row, or None."""
        rows = await self.rows(_READ_ONE, self.params(task_id=task_id))
        return rows[0] if rows else None

    def list_statement(
        self, task_filter: TaskFilter, *, sort_field: str, descending: bool, after: Sequence[Any] | None, limit: int
    ) -> tuple[Select[Any], dict[str, Any]]:
        """The task list query and its parameters (separate so tests can EXPLAIN exactly it).

        Built once per filter set and sort; a text search adds its condition per request.
        """
        values = task_filter.values()
        statement, params = _list_query(frozenset(values), sort_field, descending).page(after, limit)
        if task_filter.q:
            dialect = self.session.get_bind().dialect.name
            statement = statement.where(fulltext.matches(dialect, Task.__tablename__, task_filter.q))
        return statement, self.params(**values, **params)

    async def page(
        self, task_filter: TaskFilter, *, sort_field: str, descending: bool, after: Sequence[Any] | None, limit: int
    ) -> list[dict[str, Any]]:
        """Read rows of one page, ``limit + 1`` at most."""
        statement, params = self.list_statement(
            task_filter, sort_field=sort_field, descending=descending, after=after, limit=limit
        )
        return await self.rows(statement, params)
