from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel


class ActiveMember(BaseModel):
    """A member active within the dashboard's window."""

    id: uuid.UUID
    name: str
    last_active_at: datetime


class Dashboard(BaseModel):
    """The organization's task counts, open and overdue work, and active members."""

    tasks_by_status: dict[str, int]
    open_tasks: int
    overdue_tasks: int
    active_members: list[ActiveMember]
    active_within_s: int
    generated_at: datetime
