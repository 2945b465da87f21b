from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from keel.core.models import Base, IdMixin

PENDING, DELIVERED, DEAD = "pending", "delivered", "dead"


class WebhookDelivery(IdMixin, Base):
    """One event on its way to one endpoint: the body as signed, and where
    its attempts stand. Its ``message_id`` is the ``webhook-id`` of every
    attempt."""

    __tablename__ = "webhook_deliveries"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    endpoint_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event_id: Mapped[uuid.UUID]
    event_type: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    last_status_code: Mapped[int | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (
        # One delivery per event and endpoint, however often the event is consumed.
        UniqueConstraint("endpoint_id", "event_id"),
        # The dispatcher's: each endpoint's due pending deliveries, oldest first.
        Index("ix_webhook_deliveries_endpoint_due", "endpoint_id", "status", "next_attempt_at"),
        # Retention's: deliveries finished long ago.
        Index("ix_webhook_deliveries_finished", "status", "finished_at"),
        # An endpoint's deliveries, newest first.
        Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at", "id"),
    )


class WebhookAttempt(IdMixin, Base):
    """One try of a delivery: when, the answer's status (or the error), how long."""

    __tablename__ = "webhook_attempts"

    delivery_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    attempted_at: Mapped[datetime]
    status_code: Mapped[int | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(String(200), default=None)
    duration_ms: Mapped[int]
    # The first bytes of the answer, for debugging; never the whole body.
    response_excerpt: Mapped[str | None] = mapped_column(String(512), default=None)


class WebhookOrgSequence(Base):
    """The last ``org_seq`` given to an org's events, so receivers can order them."""

    __tablename__ = "webhook_org_sequences"

    org_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(default=0)
