from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AnyUrl, BaseModel, ConfigDict, Field, StringConstraints, UrlConstraints

from keel.core.schemas import InputModel, PatchModel

WebUrl = Annotated[AnyUrl, UrlConstraints(allowed_schemes=["http", "https"], max_length=2048, host_required=True)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=50, strip_whitespace=True)]


class BookmarkCreate(InputModel):
    """A new bookmark: an http(s) URL, one live bookmark per URL in an org."""

    url: WebUrl
    title: str = Field(min_length=1, max_length=200)
    notes: str = Field(default="", max_length=10_000)
    tags: list[Tag] = Field(default_factory=list, max_length=20)


class BookmarkUpdate(PatchModel):
    """Only the fields sent change."""

    non_null = ("url", "title", "notes", "tags")

    url: WebUrl | None = None
    title: str | None = Field(default=None, min_length=1, max_length=200)
    notes: str | None = Field(default=None, max_length=10_000)
    tags: list[Tag] | None = Field(default=None, max_length=20)


class BookmarkRead(BaseModel):
    """A bookmark."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    url: str
    title: str
    notes: str
    tags: list[str]
    created_by_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime
    version: int
