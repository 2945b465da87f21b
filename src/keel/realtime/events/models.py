from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from keel.core.clock import now
from keel.core.models import Base


class EventStream(Base):
    """A user's stream of events: the last ``seq`` given out, and what a
    client resuming from an older ``seq`` must be told (see ``replay.py``)."""

    __tablename__ = "realtime_streams"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    # Changes when the stream's numbering cannot be trusted by clients any
    # more (a restore from a backup taken before their last seq).
    epoch: Mapped[int] = mapped_column(default=1)
    # The highest seq of an event purged from the stream: a client resuming
    # from below it has missed events that are gone.
    purged_seq: Mapped[int] = mapped_column(BigInteger, default=0)


class RealtimeEvent(Base):
    """An event a device sent, kept until ``expires_at`` for the user's other devices."""

    __tablename__ = "realtime_events"
    __table_args__ = (
        # The same client id twice is one event.
        UniqueConstraint("user_id", "client_id"),
        Index("ix_realtime_events_expires_at", "expires_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    client_id: Mapped[str] = mapped_column(String(64))
    # Null for a browser session, which has no device key, or a device since deleted.
    device_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("devices.id", ondelete="SET NULL"), default=None)
    kind: Mapped[str] = mapped_column(String(64))
    # The client's JSON payload, as text: relayed as it came, never re-encoded.
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=now)
    expires_at: Mapped[datetime] = mapped_column()
