"""The transactional outbox: events written in the same transaction as the
change they describe, delivered later by workers (webhooks, realtime).

A crash between commit and delivery loses nothing: the row is still there.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Table
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from keel.core.clock import now
from keel.core.inserts import RowToInsert, insert_rows, with_defaults
from keel.core.models import Base, IdMixin


class OutboxEvent(IdMixin, Base):
    __tablename__ = "outbox_events"

    org_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    event_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=now)
    available_at: Mapped[datetime] = mapped_column(default=now)
    claimed_until: Mapped[datetime | None] = mapped_column(default=None)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(default=0)

    __table_args__ = (
        # Workers scan for due, unprocessed rows.
        Index("ix_outbox_events_pending", "processed_at", "available_at"),
    )


def event_row(event_type: str, payload: dict[str, Any], *, org_id: uuid.UUID | None = None) -> RowToInsert:
    """An event's row, for ``insert_rows`` to write together with the row it
    describes (the columns' defaults fill in id, times and attempts)."""
    table = OutboxEvent.__table__
    assert isinstance(table, Table)
    return table, with_defaults(table, {"org_id": org_id, "event_type": event_type, "payload": payload})


async def emit(
    session: AsyncSession, event_type: str, payload: dict[str, Any], *, org_id: uuid.UUID | None = None
) -> None:
    """Record an event in the caller's transaction; it commits with the change."""
    await insert_rows(session, event_row(event_type, payload, org_id=org_id))
