from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from keel.core.models import Base, IdMixin, SoftDeleteMixin, TimestampMixin
from keel.core.versioning import VersionedMixin, live_index


class Project(IdMixin, TimestampMixin, SoftDeleteMixin, VersionedMixin, Base):
    __tablename__ = "projects"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (live_index("ix_projects_live_created", "org_id", "created_at", "id"),)
