"""Bookmarks: one live bookmark per http(s) URL in an org."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from keel.core.org_resources import OrgResources
from keel.work.bookmarks.repository import BookmarkRepository
from keel.work.bookmarks.schemas import BookmarkRead

resources = OrgResources(
    BookmarkRepository,
    BookmarkRead.model_validate,
    event_prefix="bookmark",
    noun="Bookmark",
    event_fields=("url", "title"),
)


def stored_values(body: BaseModel, *, partial: bool) -> dict[str, Any]:
    """URLs are stored in their normalized text form."""
    values = body.model_dump(exclude_unset=partial)
    if values.get("url") is not None:
        values["url"] = str(values["url"])
    return values
