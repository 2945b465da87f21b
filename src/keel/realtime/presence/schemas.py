from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field


class SessionRead(BaseModel):
    """A live WebSocket session."""

    session_id: str
    device_id: uuid.UUID | None = Field(description="Null for a browser, which signs in with its token.")
    device_name: str | None
    device_type: str
    connected_at: datetime


class OnlineMember(BaseModel):
    """A member of the org with at least one live session."""

    user_id: uuid.UUID
    name: str
    sessions: list[SessionRead]


class PresenceRead(BaseModel):
    """The org's members online now."""

    items: list[OnlineMember]
    degraded: bool = Field(
        description="True when the shared presence index is unreachable: only this server's sessions are listed."
    )
