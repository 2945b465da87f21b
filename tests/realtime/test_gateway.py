"""The WebSocket gateway on a real uvicorn server: the Ed25519 handshake,
events acked with a per-user seq and relayed in order to the user's other
devices, resume without gaps or duplicates, and resync when history is gone."""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import Awaitable, Callable, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from websockets.asyncio.client import connect

from keel.core.outbox import OutboxEvent, OutboxMessage
from keel.core.platform import platform
from tests.fixtures.accounts import API, register
from tests.fixtures.realtime import Live, add_device, closed_with, open_session, receive, send


async def test_a_device_signs_the_challenge_and_is_ready(live: Live) -> None:
    owner = await register(live.http)
    device = await add_device(live, owner)
    ws, ready = await open_session(live, device)
    assert ready["epoch"] == 1
    assert ready["last_seq"] == 0
    await send(ws, type="ping")
    assert (await receive(ws))["type"] == "pong"
    await ws.close()


async def test_a_wrong_signature_closes_with_4401(live: Live) -> None:
    owner = await register(live.http)
    device = await add_device(live, owner)
    ws = await connect(live.ws_url)
    challenge = await receive(ws)
    # Signed by another key, and then by the right key over other bytes.
    impostor = Ed25519PrivateKey.generate().sign(base64.b64decode(challenge["nonce"]))
    await send(ws, type="auth", device_id=device.id, signature=base64.b64encode(impostor).decode())
    assert await closed_with(ws) == 4401
    ws = await connect(live.ws_url)
    await receive(ws)
    replayed = device.key.sign(base64.b64decode(challenge["nonce"]))  # the earlier connection's nonce
    await send(ws, type="auth", device_id=device.id, signature=base64.b64encode(replayed).decode())
    assert await closed_with(ws) == 4401


async def test_no_answer_in_time_or_nonsense_closes_with_4401(live_keel: Callable[..., Awaitable[Live]]) -> None:
    live = await live_keel(realtime_nonce_ttl_s=0.3)
    ws = await connect(live.ws_url)
    await receive(ws)
    assert await closed_with(ws) == 4401
    for answer in ("not json", '{"type":"event"}', '{"type":"auth"}', '{"type":"auth","token":"nope"}'):
        ws = await connect(live.ws_url)
        await receive(ws)
        await ws.send(answer)
        assert await closed_with(ws) == 4401, answer


async def test_failed_handshakes_are_limited_per_device_and_address(
    live_keel: Callable[..., Awaitable[Live]],
) -> None:
    live = await live_keel(realtime_auth_failures_per_minute=3)
    owner = await register(live.http)
    device = await add_device(live, owner)
    wrong = Ed25519PrivateKey.generate()
    for _ in range(3):
        ws = await connect(live.ws_url)
        challenge = await receive(ws)
        signature = wrong.sign(base64.b64decode(challenge["nonce"]))
        await send(ws, type="auth", device_id=device.id, signature=base64.b64encode(signature).decode())
        assert await closed_with(ws) == 4401
    # Now even the right key is turned away for a while, and so is the address.
    ws = await connect(live.ws_url)
    assert await closed_with(ws) == 4429


async def test_a_browser_authenticates_with_its_token_in_the_first_message(live: Live) -> None:
    owner = await register(live.http)
    ws, ready = await open_session(live, token=owner.access_token)
    assert ready["type"] == "ready"
    await ws.close()


async def test_events_are_acked_with_a_seq_and_reach_the_users_other_devices_only(live: Live) -> None:
    owner, stranger = await register(live.http), await register(live.http)
    phone, laptop = await add_device(live, owner), await add_device(live, owner)
    other = await add_device(live, stranger)
    a, _ = await open_session(live, phone)
    b, _ = await open_session(live, laptop)
    c, _ = await open_session(live, other)
    await send(a, type="event", id="e-1", kind="note.saved", payload={"text": "hi"}, ttl_s=60)
    ack = await receive(a)
    assert ack == {"type": "ack", "id": "e-1", "seq": 1}
    relayed = await receive(b)
    assert relayed["type"] == "event"
    assert (relayed["seq"], relayed["id"], relayed["kind"], relayed["payload"]) == (
        1,
        "e-1",
        "note.saved",
        {"text": "hi"},
    )
    assert relayed["from_device"] == phone.id
    # The same id again: the same ack, stored and relayed once.
    await send(a, type="event", id="e-1", kind="note.saved", payload={"text": "hi"}, ttl_s=60)
    assert await receive(a) == {"type": "ack", "id": "e-1", "seq": 1}
    await send(b, type="event", id="e-2", kind="note.saved", payload=None)
    assert (await receive(b))["seq"] == 2
    assert (await receive(a))["id"] == "e-2"  # not e-1 again
    await send(c, type="ping")
    assert (await receive(c))["type"] == "pong"  # the stranger heard nothing before it
    stored = await live.http.get(f"{API}/events", headers=owner.headers)
    assert [(e["seq"], e["id"]) for e in stored.json()["items"]] == [(1, "e-1"), (2, "e-2")]
    for ws in (a, b, c):
        await ws.close()


async def test_a_burst_of_1000_events_arrives_in_order(live_keel: Callable[..., Awaitable[Live]]) -> None:
    live = await live_keel(realtime_messages_per_s=100_000)
    owner = await register(live.http)
    sender, listener = await add_device(live, owner), await add_device(live, owner)
    a, _ = await open_session(live, sender)
    b, _ = await open_session(live, listener)
    for n in range(1000):
        await send(a, type="event", id=f"burst-{n}", kind="tick", payload=n)
    acks = [await receive(a) for _ in range(1000)]
    assert [ack["seq"] for ack in acks] == list(range(1, 1001))
    relayed = [await receive(b) for _ in range(1000)]
    assert [event["payload"] for event in relayed] == list(range(1000))
    assert [event["seq"] for event in relayed] == list(range(1, 1001))
    await a.close()
    await b.close()


async def test_a_device_resumes_where_it_left_without_gap_or_duplicate(live: Live) -> None:
    owner = await register(live.http)
    sender, listener = await add_device(live, owner), await add_device(live, owner)
    a, _ = await open_session(live, sender)
    b, _ = await open_session(live, listener)
    await send(a, type="event", id="before", kind="k", payload=0)
    await receive(a)
    seen = (await receive(b))["seq"]
    await b.close()
    for n in range(5):
        await send(a, type="event", id=f"missed-{n}", kind="k", payload=n)
        await receive(a)
    b, ready = await open_session(live, listener)
    assert ready["last_seq"] == 6
    await send(b, type="resume", after_seq=seen, epoch=ready["epoch"])
    missed = [await receive(b) for _ in range(5)]
    assert [e["id"] for e in missed] == [f"missed-{n}" for n in range(5)]
    await send(a, type="event", id="live", kind="k", payload=6)
    await receive(a)
    assert (await receive(b))["id"] == "live"
    await send(b, type="ping")
    assert (await receive(b))["type"] == "pong"  # nothing more: no duplicate
    await a.close()
    await b.close()


async def test_resuming_past_expired_history_says_resync(live: Live) -> None:
    owner = await register(live.http)
    sender, listener = await add_device(live, owner), await add_device(live, owner)
    a, _ = await open_session(live, sender)
    await send(a, type="event", id="short", kind="k", payload=1, ttl_s=1)
    await receive(a)
    await send(a, type="event", id="long", kind="k", payload=2, ttl_s=600)
    await receive(a)
    await asyncio.sleep(1.2)
    b, _ = await open_session(live, listener)
    await send(b, type="resume", after_seq=0)
    resync = await receive(b)
    assert resync["type"] == "resync"
    assert resync["reason"] == "expired"
    assert resync["last_seq"] == 2
    # From there on the stream continues: the next event, not the old ones.
    await send(a, type="event", id="next", kind="k", payload=3)
    await receive(a)
    assert (await receive(b))["id"] == "next"
    # A resume from after the expired event is complete, and replays what is left.
    c, _ = await open_session(live, listener)
    await send(c, type="resume", after_seq=1)
    assert [(await receive(c))["id"] for _ in range(2)] == ["long", "next"]
    for ws in (a, b, c):
        await ws.close()


async def test_a_client_ahead_of_the_stream_or_in_another_epoch_resyncs(live: Live) -> None:
    owner = await register(live.http)
    device = await add_device(live, owner)
    ws, _ = await open_session(live, device)
    await send(ws, type="resume", after_seq=40)
    assert (await receive(ws))["reason"] == "ahead"
    await send(ws, type="resume", after_seq=0, epoch=7)
    assert (await receive(ws))["reason"] == "epoch"
    await ws.close()


class DeviceEventsOf:
    """An outbox consumer that hears one org's device events, and does nothing with them."""

    name = "test.device_events"

    def __init__(self, org_id: uuid.UUID) -> None:
        self.org_id = org_id

    async def hears(self, session: AsyncSession, event_type: str, org_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        return {self.org_id} if event_type == "device.event" and self.org_id in org_ids else set()

    async def consume(self, session: AsyncSession, messages: Sequence[OutboxMessage]) -> None:
        return None


async def test_device_events_go_to_the_outbox_of_the_users_personal_org_once_a_consumer_hears_them(live: Live) -> None:
    owner = await register(live.http)
    device = await add_device(live, owner)
    ws, _ = await open_session(live, device)
    await send(ws, type="event", id="unheard", kind="note.saved", payload={"text": "nobody listens"})
    assert (await receive(ws))["seq"] == 1
    # Now a consumer hears the user's device events (as webhooks do once an
    # endpoint subscribes; one that would send them is for the webhook tests).
    platform(live.app).worker.add_consumer(DeviceEventsOf(uuid.UUID(owner.personal_org_id)))
    await send(ws, type="event", id="hooked", kind="note.saved", payload={"text": "hi"})
    assert (await receive(ws))["seq"] == 2
    await ws.close()
    assert (await live.http.delete(f"{API}/devices/{device.id}", headers=owner.headers)).status_code == 204
    async with platform(live.app).database.session(write=False) as session:
        rows = (
            await session.execute(
                select(OutboxEvent.event_type, OutboxEvent.org_id, OutboxEvent.payload)
                .where(OutboxEvent.event_type.like("device.%"), OutboxEvent.org_id == uuid.UUID(owner.personal_org_id))
                .order_by(OutboxEvent.created_at)
            )
        ).all()
    # Registration and revocation always; the event only once a consumer hears it.
    assert [row.event_type for row in rows] == ["device.registered", "device.event", "device.revoked"]
    assert rows[1].payload == {
        "user_id": owner.id,
        "device_id": device.id,
        "seq": 2,
        "id": "hooked",
        "kind": "note.saved",
        "payload": {"text": "hi"},
    }


async def test_an_org_hears_device_events_through_an_enabled_endpoint_subscribed_to_them(live: Live) -> None:
    async def org_with_endpoint(**body: object) -> uuid.UUID:
        owner = await register(live.http)
        hooks = f"{API}/orgs/{owner.personal_org_id}/webhooks"
        response = await live.http.post(
            hooks, json={"url": "https://hooks.example.com/x", **body}, headers=owner.headers
        )
        assert response.status_code == 201, response.text
        return uuid.UUID(owner.personal_org_id)

    every_type = await org_with_endpoint()
    device_events = await org_with_endpoint(event_types=["device.event", "task.created"])
    tasks_only = await org_with_endpoint(event_types=["task.created"])
    disabled_owner = await register(live.http)
    hooks = f"{API}/orgs/{disabled_owner.personal_org_id}/webhooks"
    created = await live.http.post(
        hooks,
        json={"url": "https://hooks.example.com/z", "event_types": ["device.event"]},
        headers=disabled_owner.headers,
    )
    assert created.status_code == 201
    patched = await live.http.patch(
        f"{hooks}/{created.json()['id']}", json={"enabled": False}, headers=disabled_owner.headers
    )
    assert patched.status_code == 200, patched.text
    disabled = uuid.UUID(disabled_owner.personal_org_id)
    silent = uuid.UUID((await register(live.http)).personal_org_id)
    worker = platform(live.app).worker
    async with platform(live.app).database.session(write=False) as session:
        heard = await worker.heard_in(
            session, "device.event", [every_type, device_events, tasks_only, disabled, silent]
        )
    assert heard == {every_type, device_events}
