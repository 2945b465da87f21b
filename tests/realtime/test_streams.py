"""A user's stream over time: events stamp the user's activity, expired
events are purged and a resume from before them says so, the replay route
pages through what is left, and one user's flood does not hold up another's."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

from sqlalchemy import select, update

from keel.core.clock import now
from keel.core.platform import platform
from keel.identity.users.models import User
from keel.realtime.events import service as events
from keel.realtime.events.models import EventStream, RealtimeEvent
from keel.realtime.events.repository import StreamRepository
from keel.realtime.retention import retention_job
from tests.fixtures.accounts import API, register
from tests.fixtures.realtime import Live, add_device, open_session, receive, send


async def test_an_event_stamps_the_users_last_activity(live: Live) -> None:
    owner = await register(live.http)
    database = platform(live.app).database
    long_ago = now() - timedelta(days=3)
    async with database.session(write=True) as session, session.begin():
        await session.execute(update(User).where(User.id == uuid.UUID(owner.id)).values(last_active_at=long_ago))
    ws, _ = await open_session(live, await add_device(live, owner))
    await send(ws, type="event", id="e", kind="k")
    await receive(ws)
    async with database.session(write=False) as session:
        stamped = await session.scalar(select(User.last_active_at).where(User.id == uuid.UUID(owner.id)))
    assert stamped is not None
    assert stamped > long_ago + timedelta(days=2)
    await ws.close()


async def test_an_event_id_is_a_duplicate_only_within_its_own_users_stream(live: Live) -> None:
    first, second = [uuid.UUID((await register(live.http)).id) for _ in range(2)]
    database = platform(live.app).database

    async def everyone(session: object, user_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        return set(user_ids)

    async def nobody(session: object, event_type: str, org_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        return set()

    def incoming(user_id: uuid.UUID, client_id: str) -> events.Incoming:
        return events.Incoming(
            user_id=user_id,
            device_id=None,
            org_id=None,
            client_id=client_id,
            kind="k",
            payload="{}",
            expires_at=now() + timedelta(minutes=5),
        )

    async def store(batch: list[events.Incoming]) -> list[tuple[int, bool]]:
        async with database.session(write=True) as session, session.begin():
            await events.store(session, batch, active_users=everyone, heard_in=nobody)
        return [(item.seq, item.duplicate) for item in batch]

    assert await store([incoming(first, "a")]) == [(1, False)]
    # The first user's "b" and "c" and the second's "a" are new, though each
    # id may be known to the batch's other user; only the first user's "a"
    # again is not. The users reserve different numbers of seqs.
    batch = [
        incoming(first, "b"),
        incoming(second, "a"),
        incoming(first, "a"),
        incoming(first, "c"),
        incoming(second, "a"),
    ]
    assert await store(batch) == [(2, False), (1, False), (1, True), (3, False), (1, True)]


async def test_batches_reserving_the_same_new_streams_at_once_get_the_next_seqs_in_turn(live: Live) -> None:
    first, second = [uuid.UUID((await register(live.http)).id) for _ in range(2)]
    database = platform(live.app).database
    async with database.session(write=True) as earlier, earlier.begin():
        # Neither user has a stream yet: this batch creates both rows.
        assert await StreamRepository(earlier).reserve({first: 2, second: 1}) == {first: 1, second: 1}

        async def later() -> dict[uuid.UUID, int]:
            async with database.session(write=True) as session, session.begin():
                return await StreamRepository(session).reserve({second: 3, first: 1})

        waiting = asyncio.create_task(later())
        await asyncio.sleep(0.2)  # it waits for the rows the first batch holds
        assert not waiting.done()
    assert await asyncio.wait_for(waiting, 5) == {first: 3, second: 2}
    async with database.session(write=False) as session:
        rows = await session.execute(select(EventStream.user_id, EventStream.last_seq))
        last = {row.user_id: row.last_seq for row in rows}
    assert (last[first], last[second]) == (3, 4)


async def test_purged_events_make_a_resume_from_before_them_resync(live: Live) -> None:
    owner = await register(live.http)
    device = await add_device(live, owner)
    ws, _ = await open_session(live, device)
    for n in range(3):
        await send(ws, type="event", id=f"e-{n}", kind="k", ttl_s=600)
        await receive(ws)
    database = platform(live.app).database
    async with database.session(write=True) as session, session.begin():  # the first two run out
        await session.execute(
            update(RealtimeEvent)
            .where(RealtimeEvent.user_id == uuid.UUID(owner.id), RealtimeEvent.seq <= 2)
            .values(expires_at=now() - timedelta(seconds=1))
        )
    settings = platform(live.app).settings
    await retention_job(settings, platform(live.app).metrics).run(database)
    async with database.session(write=False) as session:
        left = (
            await session.scalars(select(RealtimeEvent.seq).where(RealtimeEvent.user_id == uuid.UUID(owner.id)))
        ).all()
    assert list(left) == [3]
    await send(ws, type="resume", after_seq=1)
    resync = await receive(ws)
    assert (resync["type"], resync["reason"], resync["last_seq"]) == ("resync", "purged", 3)
    await send(ws, type="resume", after_seq=2)  # from the purged ones on: complete
    await send(ws, type="ping")
    assert (await receive(ws))["type"] == "pong"
    await ws.close()


async def test_the_replay_pages_through_unexpired_events_in_order(live_keel: Callable[..., Awaitable[Live]]) -> None:
    live = await live_keel(realtime_messages_per_s=100_000)
    owner = await register(live.http)
    ws, _ = await open_session(live, await add_device(live, owner))
    for n in range(250):
        await send(ws, type="event", id=f"e-{n}", kind="k", payload=n)
    for _ in range(250):
        await receive(ws)
    seqs: list[int] = []
    cursor = None
    for _ in range(3):
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = (await live.http.get(f"{API}/events", params=params, headers=owner.headers)).json()
        seqs.extend(e["seq"] for e in page["items"])
        cursor = page["next_cursor"]
    assert seqs == list(range(1, 251))
    assert cursor is None
    default = (await live.http.get(f"{API}/events", headers=owner.headers)).json()
    assert len(default["items"]) == 100
    too_many = await live.http.get(f"{API}/events", params={"limit": 1001}, headers=owner.headers)
    assert too_many.status_code == 422
    forged = await live.http.get(f"{API}/events", params={"cursor": "abc.def"}, headers=owner.headers)
    assert forged.status_code == 400
    await ws.close()


async def test_one_users_flood_does_not_hold_up_another_users_events(
    live_keel: Callable[..., Awaitable[Live]],
) -> None:
    live = await live_keel(realtime_messages_per_s=100_000)
    flooder, calm = await register(live.http), await register(live.http)
    loud, _ = await open_session(live, await add_device(live, flooder))
    sender, _ = await open_session(live, await add_device(live, calm))
    listener, _ = await open_session(live, await add_device(live, calm))
    flood = 500
    for n in range(flood):
        await send(loud, type="event", id=f"flood-{n}", kind="k", payload="x" * 200)
    await send(sender, type="event", id="calm", kind="k", payload=1)
    # The calm user's event is relayed while the flood is still being acked.
    relayed = asyncio.create_task(receive(listener, timeout_s=30))
    acks = 0
    while not relayed.done():
        frame = await receive(loud, timeout_s=30)
        acks += frame["type"] == "ack"
    assert (await relayed)["id"] == "calm"
    assert acks < flood
    loud.transport.abort()  # the rest of its flood is dropped with it
    for ws in (sender, listener):
        await ws.close()
