"""What the gateway does with misbehaving clients and revoked credentials:
an error frame or a close code, never a crash; revocations and account
deletion close live sessions at once; a rotated key replaces the old one."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import func, select, update
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from keel.core.clock import now
from keel.core.platform import platform
from keel.realtime.devices.models import Device as DeviceRow
from keel.realtime.events.models import RealtimeEvent
from keel.realtime.services import Realtime
from tests.fixtures.accounts import API, register
from tests.fixtures.realtime import Live, add_device, closed_with, handshake, open_session, public_key_of, receive, send
from tests.fixtures.waiting import eventually


async def test_bad_frames_get_error_frames_and_the_session_goes_on(live: Live) -> None:
    owner = await register(live.http)
    ws, _ = await open_session(live, await add_device(live, owner))
    for frame, code in (
        ("not json", "invalid_json"),
        ('{"type":"dance"}', "invalid_message"),
        ('{"type":"event","id":"x"}', "invalid_message"),
        ('{"type":"event","id":"x","kind":"k","ttl_s":0}', "invalid_message"),
        ('{"type":"event","id":"x","kind":"k","ttl_s":999999999}', "ttl_too_long"),
        ('{"type":"event","id":"x","kind":"k","sent_at":"2999-01-01T00:00:00Z"}', "clock_skew"),
        ('{"type":"event","id":"x","kind":"k","ttl_s":60,"sent_at":"2020-01-01T00:00:00Z"}', "expired"),
        ('["a list"]', "invalid_message"),
    ):
        await ws.send(frame)
        answer = await receive(ws)
        assert (answer["type"], answer["code"]) == ("error", code), frame
    await ws.send(b"\x00binary")
    assert (await receive(ws))["code"] == "binary_frame"
    await send(ws, type="ping")
    assert (await receive(ws))["type"] == "pong"
    await ws.close()


async def test_a_client_clock_within_the_skew_is_tolerated(live: Live) -> None:
    owner = await register(live.http)
    ws, _ = await open_session(live, await add_device(live, owner))
    # Four minutes behind, with a minute to live: by the server's clock it
    # expired three minutes ago, but the clock may be wrong by five.
    sent_at = (datetime.now(UTC) - timedelta(minutes=4)).isoformat()
    await send(ws, type="event", id="late", kind="k", ttl_s=60, sent_at=sent_at)
    assert (await receive(ws))["type"] == "ack"
    await ws.close()


async def test_an_oversized_frame_closes_with_1009(live_keel: Callable[..., Awaitable[Live]]) -> None:
    live = await live_keel(realtime_max_frame_bytes=2048)
    owner = await register(live.http)
    ws, _ = await open_session(live, await add_device(live, owner))
    await send(ws, type="event", id="big", kind="k", payload="x" * 4096)
    assert await closed_with(ws) == 1009


async def test_a_flood_closes_with_4429_and_others_are_served(live_keel: Callable[..., Awaitable[Live]]) -> None:
    live = await live_keel(realtime_messages_per_s=20)
    flooder, calm = await register(live.http), await register(live.http)
    ws, _ = await open_session(live, await add_device(live, flooder))
    other, _ = await open_session(live, await add_device(live, calm))
    for _ in range(100):
        try:
            await send(ws, type="ping")
        except ConnectionClosed:
            break
    assert await closed_with(ws) == 4429
    await send(other, type="ping")
    assert (await receive(other))["type"] == "pong"
    await other.close()


async def test_a_consumer_that_stops_reading_is_disconnected(live_keel: Callable[..., Awaitable[Live]]) -> None:
    live = await live_keel(realtime_send_buffer=10, realtime_messages_per_s=100_000)
    owner = await register(live.http)
    sender, slow = await add_device(live, owner), await add_device(live, owner)
    a, _ = await open_session(live, sender)
    # A client that reads nothing: its socket buffers fill, then keel's buffer.
    b = await connect(live.ws_url, max_queue=1)
    challenge = await receive(b)
    signature = slow.key.sign(base64.b64decode(challenge["nonce"]))
    await send(b, type="auth", device_id=slow.id, signature=base64.b64encode(signature).decode())
    assert (await receive(b))["type"] == "ready"  # and from here on, b reads nothing
    hub = platform(live.app).get(Realtime).hub

    def connected() -> bool:
        return any(str(c.device_id) == slow.id for c in hub.connections)

    assert connected()
    payload = "x" * 60_000
    for n in range(500):  # some MB: the sockets' buffers, then keel's ten frames
        await send(a, type="event", id=f"fill-{n}", kind="k", payload=payload)
        await receive(a)
        if not connected():
            break
    assert not connected()
    b.transport.abort()  # a client that reads nothing would not take part in a close either
    await a.close()


async def test_too_many_connections_for_one_user_are_refused(live_keel: Callable[..., Awaitable[Live]]) -> None:
    live = await live_keel(realtime_max_connections_per_user=2)
    owner = await register(live.http)
    device = await add_device(live, owner)
    first, _ = await open_session(live, device)
    second, _ = await open_session(live, device)
    ws = await connect(live.ws_url)
    challenge = await receive(ws)
    signature = device.key.sign(base64.b64decode(challenge["nonce"]))
    await send(ws, type="auth", device_id=device.id, signature=base64.b64encode(signature).decode())
    assert await closed_with(ws) == 4429
    await first.close()
    await second.close()


async def test_revoking_a_device_closes_its_live_session(live: Live) -> None:
    owner = await register(live.http)
    device = await add_device(live, owner)
    ws, _ = await open_session(live, device)
    assert (await live.http.delete(f"{API}/devices/{device.id}", headers=owner.headers)).status_code == 204
    assert await closed_with(ws, timeout_s=1.0) == 4403
    again = await connect(live.ws_url)
    challenge = await receive(again)
    signature = device.key.sign(base64.b64decode(challenge["nonce"]))
    await send(again, type="auth", device_id=device.id, signature=base64.b64encode(signature).decode())
    assert await closed_with(again) == 4401


async def test_deleting_the_account_closes_every_session_and_revokes_the_devices(live: Live) -> None:
    owner = await register(live.http)
    device = await add_device(live, owner)
    ws, _ = await open_session(live, device)
    browser, _ = await open_session(live, token=owner.access_token)
    assert (await live.http.delete(f"{API}/me", headers=owner.headers)).status_code == 204
    assert await closed_with(ws, timeout_s=2.0) == 4403
    assert await closed_with(browser, timeout_s=2.0) == 4403


async def test_the_export_holds_the_devices_and_events_and_deletion_deletes_the_events(live: Live) -> None:
    owner = await register(live.http)
    kept, revoked = await add_device(live, owner, "kept"), await add_device(live, owner, "revoked")
    assert (await live.http.delete(f"{API}/devices/{revoked.id}", headers=owner.headers)).status_code == 204
    ws, _ = await open_session(live, kept)
    await send(ws, type="event", id="note-1", kind="note", payload={"text": "personal"})
    assert (await receive(ws))["type"] == "ack"

    exported = await live.http.get(f"{API}/me/export", headers=owner.headers)
    assert exported.status_code == 200
    realtime = exported.json()["domains"]["realtime"]
    devices = {d["name"]: d for d in realtime["devices"]}
    assert devices.keys() == {"kept", "revoked"}
    assert devices["kept"]["public_key"] == public_key_of(kept.key)
    assert devices["kept"]["revoked_at"] is None
    assert devices["revoked"]["revoked_at"] is not None
    [event] = realtime["events"]
    assert (event["id"], event["kind"], event["payload"], event["from_device"]) == (
        "note-1",
        "note",
        {"text": "personal"},
        kept.id,
    )

    assert (await live.http.delete(f"{API}/me", headers=owner.headers)).status_code == 204

    async def no_events_left() -> bool:
        async with platform(live.app).database.session(write=False) as session:
            found = await session.scalar(
                select(func.count()).select_from(RealtimeEvent).where(RealtimeEvent.user_id == uuid.UUID(owner.id))
            )
        return found == 0

    assert await eventually(no_events_left)


async def test_an_event_from_a_device_revoked_mid_flight_is_dropped_cleanly(live: Live) -> None:
    owner = await register(live.http)
    device, other = await add_device(live, owner), await add_device(live, owner)
    ws, _ = await open_session(live, device)
    listener, _ = await open_session(live, other)
    # Revoked in the database only: the live session has not heard of it yet.
    async with platform(live.app).database.session(write=True) as session, session.begin():
        await session.execute(update(DeviceRow).where(DeviceRow.id == uuid.UUID(device.id)).values(revoked_at=now()))
    await send(ws, type="event", id="late", kind="k", payload=1)
    assert await closed_with(ws) == 4403
    stored = await live.http.get(f"{API}/events", headers=owner.headers)
    assert stored.json()["items"] == []
    await send(listener, type="ping")
    assert (await receive(listener))["type"] == "pong"  # nothing relayed before it
    await listener.close()


async def test_a_device_rotates_its_key_and_the_old_one_stops_working(live: Live) -> None:
    owner = await register(live.http)
    device = await add_device(live, owner)
    ws, _, nonce = await handshake(live, device)
    other_session, _ = await open_session(live, device)
    new_key = Ed25519PrivateKey.generate()
    new_public = new_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    # Signed by the old key over the session's nonce and the new key.
    await send(
        ws,
        type="rotate_key",
        public_key=base64.b64encode(new_public).decode(),
        signature=base64.b64encode(device.key.sign(nonce + new_public)).decode(),
    )
    assert (await receive(ws))["type"] == "key_rotated"
    assert await closed_with(other_session) == 4403  # signed in with the old key
    old = await connect(live.ws_url)
    challenge = await receive(old)
    signature = device.key.sign(base64.b64decode(challenge["nonce"]))
    await send(old, type="auth", device_id=device.id, signature=base64.b64encode(signature).decode())
    assert await closed_with(old) == 4401
    fresh, _ = await open_session(live, device, key=new_key)
    await fresh.close()
    await ws.close()
