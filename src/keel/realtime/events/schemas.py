from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
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

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> EventRead:
        """From a stored event's columns (``repository.EVENT_COLUMNS``)."""
        return cls(
            seq=row["seq"],
            id=row["client_id"],
            kind=row["kind"],
            payload=orjson.loads(row["payload"]),
            from_device=row["device_id"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
        )
