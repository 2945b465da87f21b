"""The SQL of users' event streams: every statement names its user."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Table, bindparam, case, delete, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.db import execute_core
from keel.core.sequences import reserve
from keel.realtime.events.models import EventStream, RealtimeEvent

EVENT_COLUMNS = (
    RealtimeEvent.seq,
    RealtimeEvent.client_id,
    RealtimeEvent.device_id,
    RealtimeEvent.kind,
    RealtimeEvent.payload,
    RealtimeEvent.created_at,
    RealtimeEvent.expires_at,
)


# Built once: the events of every batch go through these.
_EVENTS = RealtimeEvent.__table__
assert isinstance(_EVENTS, Table)
# Which (user, client id) pairs a batch's streams hold, as each database
# plans it well. PostgreSQL: the exact pairs, an index probe each (two IN
# lists match their cross product, and once a batch names most users its
# planner scans the whole table). SQLite: the two IN lists, which it probes
# on the (user_id, client_id) index as their cross product (a row-value IN
# is a scan of the whole table there).
_SEQS_OF_PAIRS = select(RealtimeEvent.user_id, RealtimeEvent.client_id, RealtimeEvent.seq).where(
    tuple_(RealtimeEvent.user_id, RealtimeEvent.client_id).in_(bindparam("keys", expanding=True))
)
_SEQS_OF_LISTS = select(RealtimeEvent.user_id, RealtimeEvent.client_id, RealtimeEvent.seq).where(
    RealtimeEvent.user_id.in_(bindparam("user_ids", expanding=True)),
    RealtimeEvent.client_id.in_(bindparam("client_ids", expanding=True)),
)
_ADD = insert(_EVENTS)
_POSITION = select(EventStream.epoch, EventStream.last_seq).where(EventStream.user_id == bindparam("user_id"))


class StreamRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def reserve(self, counts: Mapping[uuid.UUID, int]) -> dict[uuid.UUID, int]:
        """The first of the next ``counts[user]`` seqs of each user's stream."""
        return await reserve(self.session, EventStream.user_id, EventStream.last_seq, counts)

    async def stream(self, user_id: uuid.UUID) -> EventStream | None:
        found: EventStream | None = await self.session.get(EventStream, user_id)
        return found

    async def position(self, user_id: uuid.UUID) -> tuple[int, int]:
        """(epoch, last seq) of the user's stream; (1, 0) before its first event."""
        row = (await execute_core(self.session, _POSITION, {"user_id": user_id})).first()
        return (row.epoch, row.last_seq) if row is not None else (1, 0)

    async def seqs_of(self, client_ids: Collection[tuple[uuid.UUID, str]]) -> dict[tuple[uuid.UUID, str], int]:
        """The seq of each (user, client id) the users' streams already hold."""
        if not client_ids:
            return {}
        if self.session.get_bind().dialect.name == "postgresql":
            rows = await execute_core(self.session, _SEQS_OF_PAIRS, {"keys": sorted(client_ids)})
        else:
            users = sorted({user_id for user_id, _ in client_ids})
            ids = sorted({client_id for _, client_id in client_ids})
            rows = await execute_core(self.session, _SEQS_OF_LISTS, {"user_ids": users, "client_ids": ids})
        found = {(row.user_id, row.client_id): row.seq for row in rows}
        return {key: seq for key, seq in found.items() if key in client_ids}

    async def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            await execute_core(self.session, _ADD, rows)

    async def after(self, user_id: uuid.UUID, after_seq: int, *, at: datetime, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` of the user's unexpired events after ``after_seq``, in order."""
        rows = await self.session.execute(
            select(*EVENT_COLUMNS)
            .where(RealtimeEvent.user_id == user_id, RealtimeEvent.seq > after_seq, RealtimeEvent.expires_at > at)
            .order_by(RealtimeEvent.seq)
            .limit(limit)
        )
        return [dict(row) for row in rows.mappings()]

    async def stored_for(self, user_id: uuid.UUID) -> list[dict[str, Any]]:
        """Every event stored for the user, expired or not, in order: what their export holds."""
        rows = await self.session.execute(
            select(*EVENT_COLUMNS).where(RealtimeEvent.user_id == user_id).order_by(RealtimeEvent.seq)
        )
        return [dict(row) for row in rows.mappings()]

    async def forget(self, user_id: uuid.UUID) -> None:
        """Delete the user's events; the stream's counters, which say nothing
        about them, stay, so a seq is never given out twice."""
        await self.session.execute(delete(RealtimeEvent).where(RealtimeEvent.user_id == user_id))

    async def expired_after(self, user_id: uuid.UUID, after_seq: int, *, at: datetime) -> bool:
        """Whether an event after ``after_seq`` has expired (and is not purged yet)."""
        found = await self.session.scalar(
            select(RealtimeEvent.seq)
            .where(RealtimeEvent.user_id == user_id, RealtimeEvent.seq > after_seq, RealtimeEvent.expires_at <= at)
            .limit(1)
        )
        return found is not None

    async def purge_expired(self, *, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` events expired before ``before``, first
        noting in each stream the highest seq purged; how many."""
        expired = (
            select(RealtimeEvent.user_id, RealtimeEvent.seq)
            .where(RealtimeEvent.expires_at <= before)
            .order_by(RealtimeEvent.expires_at)
            .limit(limit)
        )
        rows = [(user_id, seq) for user_id, seq in (await self.session.execute(expired)).all()]
        if not rows:
            return 0
        highest: dict[uuid.UUID, int] = {}
        for user_id, seq in rows:
            highest[user_id] = max(seq, highest.get(user_id, 0))
        for user_id, seq in sorted(highest.items()):
            await self.session.execute(
                update(EventStream)
                .where(EventStream.user_id == user_id)
                .values(purged_seq=case((EventStream.purged_seq < seq, seq), else_=EventStream.purged_seq))
            )
        for user_id, seqs in _by_user(rows).items():
            await self.session.execute(
                delete(RealtimeEvent).where(RealtimeEvent.user_id == user_id, RealtimeEvent.seq.in_(seqs))
            )
        return len(rows)


def _by_user(rows: Sequence[tuple[uuid.UUID, int]]) -> dict[uuid.UUID, list[int]]:
    grouped: dict[uuid.UUID, list[int]] = {}
    for user_id, seq in rows:
        grouped.setdefault(user_id, []).append(seq)
    return grouped
