from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from keel.core.models import Base, IdMixin, SoftDeleteMixin, TimestampMixin
from keel.core.versioning import VersionedMixin, live_index


class Task(IdMixin, TimestampMixin, SoftDeleteMixin, VersionedMixin, Base):
    __tablename__ = "tasks"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="todo")
    priority: Mapped[int] = mapped_column(default=0)
    project_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("projects.id", ondelete="SET NULL"))
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    due_at: Mapped[datetime | None] = mapped_column(default=None)
    labels: Mapped[list[str]] = mapped_column(JSON, default=list)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))

    __table_args__ = (
        # The default list: live tasks of an org, newest first (id breaks ties).
        live_index("ix_tasks_live_created", "org_id", "created_at", "id"),
        Index("ix_tasks_org_status_created", "org_id", "status", "created_at", "id"),
        live_index("ix_tasks_live_updated", "org_id", "updated_at", "id"),
        live_index("ix_tasks_live_priority", "org_id", "priority", "id"),
        Index("ix_tasks_org_assignee", "org_id", "assignee_id", "created_at", "id"),
        Index("ix_tasks_org_project", "org_id", "project_id", "created_at", "id"),
        Index("ix_tasks_org_due", "org_id", "due_at"),
    )
