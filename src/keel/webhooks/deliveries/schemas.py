from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from keel.core.schemas import InputModel, UtcDatetime


class DeliveryStatus(StrEnum):
    """Where a delivery stands: still being tried, delivered, or dead (no more tries)."""

    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class DeliveryRead(BaseModel):
    """One event on its way to one endpoint."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID
    event_type: str
    webhook_id: str = Field(
        validation_alias=AliasChoices("message_id", "webhook_id"),
        description="The `webhook-id` header of every attempt.",
    )
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None = Field(description="When it is tried next; null once delivered or dead.")
    created_at: datetime
    finished_at: datetime | None


class AttemptRead(BaseModel):
    """One try: when, the receiver's status code or the error, how long, and the answer's first bytes."""

    model_config = ConfigDict(from_attributes=True)

    attempted_at: datetime
    status_code: int | None
    error: str | None
    duration_ms: int
    response_excerpt: str | None


class DeliveryDetail(DeliveryRead):
    """A delivery with the payload it sends and every attempt so far."""

    payload: dict[str, Any]
    attempt_log: list[AttemptRead]


class ReplayRequest(InputModel):
    """Replay the endpoint's dead deliveries that died at or after ``since``."""

    since: UtcDatetime


class Requeued(BaseModel):
    """How many dead deliveries are pending again, due now."""

    requeued: int


class PurgeRequest(InputModel):
    """Delete the endpoint's dead deliveries that died before ``before``; all of them without it."""

    before: UtcDatetime | None = None


class Purged(BaseModel):
    """How many dead deliveries were deleted, with their attempts."""

    purged: int


class TestSent(BaseModel):
    """The ping event queued for the endpoint."""

    event_type: str = "ping"
