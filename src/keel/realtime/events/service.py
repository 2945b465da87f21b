"""Storing the events devices send, and what a resuming client is owed.

Events are stored in batches (``gateway`` hands them to a group commit):
each user's new events get the next seqs of their stream, in the order they
came; an event id the stream already holds gets its first seq back and is
not stored again; events of an account gone or a device revoked meanwhile
are refused, each on its own, without failing the batch."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.clock import now
from keel.core.errors import BadRequest
from keel.core.outbox import emit_many
from keel.core.pagination import CursorCodec, page_of
from keel.realtime.devices.repository import live_device_ids
from keel.realtime.events.repository import StreamRepository
from keel.realtime.events.schemas import EventRead

# Whether the user may still act; stamps their last activity (throttled).
ActiveUser = Callable[[AsyncSession, uuid.UUID], Awaitable[bool]]


@dataclass(slots=True)
class Incoming:
    """An event as a device sent it; ``seq`` once stored (or found stored)."""

    user_id: uuid.UUID
    device_id: uuid.UUID | None
    org_id: uuid.UUID | None  # the user's personal org: its webhooks hear of the event
    client_id: str
    kind: str
    payload: str  # JSON text, as it came
    expires_at: datetime
    created_at: datetime = field(default_factory=now)
    seq: int = 0
    duplicate: bool = False
    refused: str | None = None


async def store(session: AsyncSession, items: Sequence[Incoming], *, active_user: ActiveUser) -> None:
    streams = StreamRepository(session)
    by_user: dict[uuid.UUID, list[Incoming]] = {}
    for item in items:
        by_user.setdefault(item.user_id, []).append(item)
    device_ids = {item.device_id for item in items if item.device_id is not None}
    live = await live_device_ids(session, device_ids)
    rows = []
    for user_id, theirs in sorted(by_user.items()):
        if not await active_user(session, user_id):
            _refuse(theirs, "account_gone")
            continue
        _refuse([i for i in theirs if i.device_id is not None and i.device_id not in live], "device_revoked")
        accepted = [item for item in theirs if item.refused is None]
        known = await streams.seqs_of(user_id, {item.client_id for item in accepted})
        fresh: dict[str, Incoming] = {}
        for item in accepted:
            if item.client_id in known or item.client_id in fresh:
                item.duplicate = True
            else:
                fresh[item.client_id] = item
        if fresh:
            seq = await streams.reserve(user_id, len(fresh))
            for item in fresh.values():
                item.seq, seq = seq, seq + 1
                rows.append(_row(item))
        for item in accepted:
            if item.duplicate:
                item.seq = known[item.client_id] if item.client_id in known else fresh[item.client_id].seq
    await streams.add(rows)
    await emit_many(session, [_outbox_event(item) for item in items if item.refused is None and not item.duplicate])


def _outbox_event(item: Incoming) -> tuple[str, dict[str, object], uuid.UUID | None]:
    payload = {
        "user_id": str(item.user_id),
        "device_id": str(item.device_id) if item.device_id else None,
        "seq": item.seq,
        "id": item.client_id,
        "kind": item.kind,
        "payload": orjson.loads(item.payload),
    }
    return "device.event", payload, item.org_id


def _refuse(items: Sequence[Incoming], reason: str) -> None:
    for item in items:
        item.refused = reason


def _row(item: Incoming) -> dict[str, object]:
    return {
        "user_id": item.user_id,
        "seq": item.seq,
        "client_id": item.client_id,
        "device_id": item.device_id,
        "kind": item.kind,
        "payload": item.payload,
        "created_at": item.created_at,
        "expires_at": item.expires_at,
    }


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """Where a user's stream stands for a client resuming after ``after_seq``."""

    epoch: int
    last_seq: int
    # Why the client cannot trust the replay to be complete, if it cannot:
    # "epoch" (its epoch is not the stream's), "ahead" (it has seqs the
    # stream does not: a restore), "expired" or "purged" (events after its
    # seq are gone).
    resync: str | None


async def resume_point(
    session: AsyncSession, user_id: uuid.UUID, *, after_seq: int, epoch: int | None, at: datetime
) -> ResumePoint:
    streams = StreamRepository(session)
    stream = await streams.stream(user_id)
    current_epoch, last_seq, purged_seq = (stream.epoch, stream.last_seq, stream.purged_seq) if stream else (1, 0, 0)
    reason = None
    if epoch is not None and epoch != current_epoch:
        reason = "epoch"
    elif after_seq > last_seq:
        reason = "ahead"
    elif after_seq < purged_seq:
        reason = "purged"
    elif await streams.expired_after(user_id, after_seq, at=at):
        reason = "expired"
    return ResumePoint(current_epoch, last_seq, reason)


async def replay(
    session: AsyncSession, codec: CursorCodec, user_id: uuid.UUID, *, cursor: str | None, limit: int
) -> tuple[list[EventRead], str | None]:
    """A page of the user's unexpired events in seq order, and the cursor of the next."""
    after = codec.decode(cursor, _REPLAY_SORT) if cursor else [0]
    if len(after) != 1 or not isinstance(after[0], int):
        raise BadRequest("The cursor is invalid.")
    rows = await StreamRepository(session).after(user_id, after[0], at=now(), limit=limit + 1)
    page, more = page_of(rows, limit)
    items = [
        EventRead(
            seq=row["seq"],
            id=row["client_id"],
            kind=row["kind"],
            payload=orjson.loads(row["payload"]),
            from_device=row["device_id"],
            created_at=row["created_at"],
            expires_at=row["expires_at"],
        )
        for row in page
    ]
    return items, codec.encode(_REPLAY_SORT, [page[-1]["seq"]]) if more else None


_REPLAY_SORT = "seq"
