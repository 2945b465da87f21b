"""The transactional outbox: events written in the same transaction as the
change they describe, handed later to the worker's consumers (webhooks,
realtime).

A crash between commit and delivery loses nothing: the row is still there.
Workers claim due rows with a lease (``claimed_until``); a lease that runs out
(its worker was killed) makes the row due again, for any worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import JSON, Index, String, Table, delete, event, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, Session, mapped_column

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


def _table() -> Table:
    table = OutboxEvent.__table__
    assert isinstance(table, Table)
    return table


def event_row(event_type: str, payload: dict[str, Any], *, org_id: uuid.UUID | None = None) -> RowToInsert:
    """An event's row, for ``insert_rows`` to write together with the row it
    describes (the columns' defaults fill in id, times and attempts)."""
    table = _table()
    return table, with_defaults(table, {"org_id": org_id, "event_type": event_type, "payload": payload})


async def emit(
    session: AsyncSession, event_type: str, payload: dict[str, Any], *, org_id: uuid.UUID | None = None
) -> None:
    """Record an event in the caller's transaction; it commits with the change."""
    await insert_rows(session, event_row(event_type, payload, org_id=org_id))
    note_written(session)


async def emit_many(session: AsyncSession, events: Sequence[tuple[str, dict[str, Any], uuid.UUID | None]]) -> None:
    """Record several events, each ``(event_type, payload, org_id)``, in one statement."""
    if not events:
        return
    table = _table()
    rows = [with_defaults(table, {"org_id": org_id, "event_type": kind, "payload": p}) for kind, p, org_id in events]
    connection = await session.connection()
    await connection.execute(insert(table), rows)
    note_written(session)


_WRITTEN = "keel.outbox_written"


def note_written(session: AsyncSession) -> None:
    """Say that ``session``'s transaction wrote events (``on_commit`` listeners hear of it)."""
    session.info[_WRITTEN] = True


def on_commit(session_class: type[Session], callback: Callable[[], None]) -> None:
    """Call ``callback`` after each commit of a transaction that wrote events
    (the worker of this process then looks at once, not at its next poll)."""

    def committed(session: Session) -> None:
        if session.info.pop(_WRITTEN, False):
            callback()

    def rolled_back(session: Session) -> None:
        session.info.pop(_WRITTEN, None)

    event.listen(session_class, "after_commit", committed)
    event.listen(session_class, "after_rollback", rolled_back)


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A committed event as consumers see it."""

    id: uuid.UUID
    org_id: uuid.UUID | None
    event_type: str
    payload: dict[str, Any]
    created_at: datetime


async def claim_due(session: AsyncSession, *, until: datetime, limit: int) -> list[uuid.UUID]:
    """Lease up to ``limit`` due, unprocessed events until ``until``; their ids,
    oldest first. Rows another worker holds (locked, or leased and not yet
    expired) are skipped, so concurrent workers never claim the same row.
    SQLite has no row locks: its writers take turns, and the lease alone
    decides."""
    table = _table()
    moment = now()
    due = (
        select(table.c.id)
        .where(
            table.c.processed_at.is_(None),
            table.c.available_at <= moment,
            or_(table.c.claimed_until.is_(None), table.c.claimed_until < moment),
        )
        .order_by(table.c.available_at, table.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    claimed = await session.execute(
        update(table)
        .where(table.c.id.in_(due.scalar_subquery()))
        .values(claimed_until=until, attempts=table.c.attempts + 1)
        .returning(table.c.id, table.c.available_at)
    )
    return [row.id for row in sorted(claimed, key=lambda row: (row.available_at, row.id))]


async def take_claimed(session: AsyncSession, ids: Sequence[uuid.UUID], *, until: datetime) -> list[OutboxMessage]:
    """Mark processed those of ``ids`` whose lease ``until`` this worker still
    holds, and return them, oldest first. Called in the transaction that
    consumes them: the consumers' writes and the mark commit together, and
    on PostgreSQL the marked rows stay locked until then."""
    if not ids:
        return []
    table = _table()
    taken = await session.execute(
        update(table)
        .where(table.c.id.in_(ids), table.c.claimed_until == until, table.c.processed_at.is_(None))
        .values(processed_at=now(), claimed_until=None)
        .returning(table.c.id, table.c.org_id, table.c.event_type, table.c.payload, table.c.created_at)
    )
    messages = [OutboxMessage(row.id, row.org_id, row.event_type, row.payload, row.created_at) for row in taken]
    return sorted(messages, key=lambda message: (message.created_at, message.id))


async def release(session: AsyncSession, ids: Sequence[uuid.UUID], *, until: datetime, retry_in: timedelta) -> int:
    """Give back claimed events this worker holds (shutting down, or its
    consumers failed): due again after ``retry_in``. How many were released."""
    if not ids:
        return 0
    table = _table()
    released = await session.execute(
        update(table)
        .where(table.c.id.in_(ids), table.c.claimed_until == until, table.c.processed_at.is_(None))
        .values(claimed_until=None, available_at=now() + retry_in)
        .returning(table.c.id)
    )
    return len(released.all())


async def oldest_due_at(session: AsyncSession) -> datetime | None:
    """When the oldest unprocessed event became due (the outbox's lag), or None."""
    table = _table()
    oldest: datetime | None = await session.scalar(
        select(func.min(table.c.available_at)).where(table.c.processed_at.is_(None))
    )
    return oldest


async def purge_processed(session: AsyncSession, *, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` events processed before ``before``; how many."""
    table = _table()
    old = select(table.c.id).where(table.c.processed_at.is_not(None), table.c.processed_at < before).limit(limit)
    purged = await session.execute(delete(table).where(table.c.id.in_(old.scalar_subquery())).returning(table.c.id))
    return len(purged.all())
