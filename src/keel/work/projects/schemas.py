from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from keel.core.schemas import InputModel, PatchModel


class ProjectCreate(InputModel):
    """A new project."""

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=10_000)


class ProjectUpdate(PatchModel):
    """Only the fields sent change."""

    non_null = ("name", "description")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)


class ProjectSummary(BaseModel):
    """How a task embeds its project."""

    id: uuid.UUID
    name: str


class ProjectRead(BaseModel):
    """A project."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    description: str
    created_by_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    version: int
