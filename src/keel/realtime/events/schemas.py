from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class EventRead(BaseModel):
    """A stored event of the caller's stream."""

    seq: int = Field(description="Its place in the user's stream: strictly increasing, without gaps when written.")
    id: str = Field(description="The id its client gave it.")
    kind: str
    payload: Any
    from_device: uuid.UUID | None
    created_at: datetime
    expires_at: datetime
