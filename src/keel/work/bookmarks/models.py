from __future__ import annotations

import uuid

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from keel.core.models import Base, IdMixin, SoftDeleteMixin, TimestampMixin
from keel.core.versioning import VersionedMixin, live_index


class Bookmark(IdMixin, TimestampMixin, SoftDeleteMixin, VersionedMixin, Base):
    __tablename__ = "bookmarks"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2048))
    title: Mapped[str] = mapped_column(String(200))
    notes: Mapped[str] = mapped_column(Text, default="")
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (
        live_index("ix_bookmarks_live_created", "org_id", "created_at", "id"),
        # One live bookmark per URL in an org; a deleted one does not block re-adding it.
        Index(
            "uq_bookmarks_org_url_live",
            "org_id",
            "url",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
            sqlite_where=text("deleted_at IS NULL"),
        ),
    )
