from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from keel.core.pagination import PageQuery
from keel.core.schemas import InputModel, PatchModel, UtcDatetime
from keel.identity.users.schemas import UserSummary
from keel.work.projects.schemas import ProjectSummary


class TaskStatus(StrEnum):
    """Where a task stands."""

    TODO = "todo"
    IN_PROGRESS = "in_progress"
    BLOCKED = "blocked"
    DONE = "done"


Label = Annotated[str, StringConstraints(min_length=1, max_length=50, strip_whitespace=True)]
Priority = Annotated[int, Field(ge=0, le=4, description="0 none, 1 low, 2 medium, 3 high, 4 urgent")]


TaskSort = Literal["created_at", "-created_at", "updated_at", "-updated_at", "priority", "-priority", "title", "-title"]


class TaskListQuery(PageQuery):
    """The task list's filters, sort and page, validated as one model."""

    status: list[TaskStatus] | None = Field(None, max_length=4)
    project_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None
    due_before: UtcDatetime | None = None
    due_after: UtcDatetime | None = None
    q: str | None = Field(None, min_length=1, max_length=200)
    sort: TaskSort = "-created_at"


class TaskCreate(InputModel):
    """A new task; project and assignee must belong to the organization."""

    title: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=20_000)
    status: TaskStatus = TaskStatus.TODO
    priority: Priority = 0
    project_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None
    due_at: UtcDatetime | None = None
    labels: list[Label] = Field(default_factory=list, max_length=20)


class TaskUpdate(PatchModel):
    """Only the fields sent change; send null to clear project, assignee or due date."""

    non_null = ("title", "description", "status", "priority", "labels")

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=20_000)
    status: TaskStatus | None = None
    priority: Priority | None = None
    project_id: uuid.UUID | None = None
    assignee_id: uuid.UUID | None = None
    due_at: UtcDatetime | None = None
    labels: list[Label] | None = Field(default=None, max_length=20)


class TaskRead(BaseModel):
    """A task, with its project and assignee embedded."""

    id: uuid.UUID
    org_id: uuid.UUID
    title: str
    description: str
    status: TaskStatus
    priority: int
    project: ProjectSummary | None
    assignee: UserSummary | None
    due_at: datetime | None
    labels: list[str]
    created_by_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    version: int
