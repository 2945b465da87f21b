"""All SQL of bookmarks: the shared org-scoped queries (see keel.core.repository)."""

from __future__ import annotations

from keel.core.repository import OrgRepository
from keel.work.bookmarks.models import Bookmark


class BookmarkRepository(OrgRepository[Bookmark]):
    model = Bookmark
