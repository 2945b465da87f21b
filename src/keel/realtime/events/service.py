"""Storing the events devices send, and what a resuming client is owed.

Events are stored in batches (``gateway`` hands them to a group commit):
each user's new events get the next seqs of their stream, in the order they
came; an event id the stream already holds gets its first seq back and is
not stored again; events of an account gone or a device revoked meanwhile
are refused, each on its own, without failing the batch."""

from __future__ import annotations

import asyncio
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

# Which of these users may still act (locked against deletion till the commit;
# their activity stamped, throttled).
ActiveUsers = Callable[[AsyncSession, list[uuid.UUID]], Awaitable[set[uuid.UUID]]]
# Of these orgs, those where an outbox consumer acts on this event type
# (``Worker.heard_in``: a webhook endpoint subscribed to it).
HeardIn = Callable[[AsyncSession, str, list[uuid.UUID]], Awaitable[set[uuid.UUID]]]
EVENT_TYPE = "device.event"


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


async def store(
    session: AsyncSession, items: Sequence[Incoming], *, active_users: ActiveUsers, heard_in: HeardIn
) -> None:
    """Store a batch, a fixed number of statements whatever its users: which
    are still active, which devices still live, which ids already stored,
    the seqs, the events, and the outbox rows of those an outbox consumer
    hears (the user's personal org has a webhook endpoint subscribed)."""
    streams = StreamRepository(session)
    active = await active_users(session, sorted({item.user_id for item in items}))
    await _others_turn()
    live = await live_device_ids(session, {item.device_id for item in items if item.device_id is not None})
    await _others_turn()
    for item in items:
        if item.user_id not in active:
            item.refused = "account_gone"
        elif item.device_id is not None and item.device_id not in live:
            item.refused = "device_revoked"
    accepted = [item for item in items if item.refused is None]
    known = await streams.seqs_of({(item.user_id, item.client_id) for item in accepted})
    await _others_turn()
    fresh: dict[tuple[uuid.UUID, str], Incoming] = {}
    for item in accepted:
        key = (item.user_id, item.client_id)
        if key in known or key in fresh:
            item.duplicate = True
        else:
            fresh[key] = item
    counts: dict[uuid.UUID, int] = {}
    for user_id, _ in fresh:
        counts[user_id] = counts.get(user_id, 0) + 1
    next_seq = await streams.reserve(counts)
    await _others_turn()
    for (user_id, _), item in fresh.items():  # in the order they came
        item.seq, next_seq[user_id] = next_seq[user_id], next_seq[user_id] + 1
    for item in accepted:
        if item.duplicate:
            key = (item.user_id, item.client_id)
            item.seq = known[key] if key in known else fresh[key].seq
    await streams.add([_row(item) for item in fresh.values()])
    await _others_turn()
    orgs = sorted({item.org_id for item in fresh.values() if item.org_id is not None})
    heard = await heard_in(session, EVENT_TYPE, orgs) if orgs else set()
    await emit_many(session, [_outbox_event(item) for item in fresh.values() if item.org_id in heard])


async def _others_turn() -> None:
    """Let the event loop run other work between a batch's statements: on
    SQLite (run on the loop) a statement never waits for I/O, and a batch
    would hold every request up from its first statement to its commit."""
    await asyncio.sleep(0)


def _outbox_event(item: Incoming) -> tuple[str, dict[str, object], uuid.UUID | None]:
    payload = {
        "user_id": str(item.user_id),
        "device_id": str(item.device_id) if item.device_id else None,
        "seq": item.seq,
        "id": item.client_id,
        "kind": item.kind,
        "payload": orjson.loads(item.payload),
    }
    return EVENT_TYPE, payload, item.org_id


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
    items = [EventRead.of(row) for row in page]
    return items, codec.encode(_REPLAY_SORT, [page[-1]["seq"]]) if more else None


_REPLAY_SORT = "seq"


async def exported_events(session: AsyncSession, user_id: uuid.UUID) -> list[dict[str, object]]:
    """Every event stored for the user, expired ones not yet purged too, for their export."""
    return [EventRead.of(row).model_dump(mode="json") for row in await StreamRepository(session).stored_for(user_id)]


async def forget_user(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Delete the user's stored events (their account is going)."""
    await StreamRepository(session).forget(user_id)
