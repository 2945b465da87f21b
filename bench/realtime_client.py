"""The realtime benchmark's load generator: devices seeded straight into the
database, and asyncio WebSocket sessions that sign their handshakes, send
events at a steady rate and time their arrival at the user's other device."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import insert, select
from websockets.asyncio.client import ClientConnection, connect

from keel.core.db import Database
from keel.identity.users.models import User
from keel.models_registry import metadata
from keel.realtime.devices.models import Device


@dataclass(frozen=True)
class SeededDevice:
    id: str
    user_id: uuid.UUID
    key: Ed25519PrivateKey


async def seed_devices(database: Database, per_user: Sequence[int]) -> list[list[SeededDevice]]:
    """For the first len(per_user) users, that many devices each (one key
    shared by a user's devices: signing is what is measured, not key generation)."""
    assert metadata is not None
    async with database.session(write=True) as session, session.begin():
        user_ids = list((await session.scalars(select(User.id).order_by(User.created_at))).all())
        if len(user_ids) < len(per_user):
            raise RuntimeError(f"{len(per_user)} users wanted, {len(user_ids)} seeded")
        fleets: list[list[SeededDevice]] = []
        rows = []
        for user_id, count in zip(user_ids, per_user, strict=False):
            key = Ed25519PrivateKey.generate()
            public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
            devices = []
            for n in range(count):
                device_id = uuid.uuid4()
                rows.append(
                    {"id": device_id, "user_id": user_id, "name": f"bench-{n}", "type": "phone", "public_key": public}
                )
                devices.append(SeededDevice(str(device_id), user_id, key))
            fleets.append(devices)
        for start in range(0, len(rows), 1000):
            await session.execute(insert(Device), rows[start : start + 1000])
    return fleets


async def open_session(url: str, device: SeededDevice) -> ClientConnection:
    ws = await connect(url, compression=None, ping_interval=None, max_queue=64, open_timeout=60)
    challenge = orjson.loads(await ws.recv())
    signature = device.key.sign(base64.b64decode(challenge["nonce"]))
    auth = {"type": "auth", "device_id": device.id, "signature": base64.b64encode(signature).decode()}
    await ws.send(orjson.dumps(auth).decode())
    ready = orjson.loads(await ws.recv())
    if ready.get("type") != "ready":
        raise RuntimeError(f"handshake refused: {ready}")
    return ws


async def open_sessions(url: str, devices: Sequence[SeededDevice], *, concurrency: int = 64) -> list[ClientConnection]:
    slots = asyncio.Semaphore(concurrency)

    async def one(device: SeededDevice) -> ClientConnection:
        async with slots:
            return await open_session(url, device)

    return list(await asyncio.gather(*(one(device) for device in devices)))


async def close_all(sessions: Sequence[ClientConnection]) -> None:
    for start in range(0, len(sessions), 500):
        await asyncio.gather(*(ws.close() for ws in sessions[start : start + 500]), return_exceptions=True)


@dataclass
class Relay:
    """Events sent at a steady rate by each pair's sender, timed at its receiver."""

    latencies_ms: list[float] = field(default_factory=list)
    sent: int = 0
    sending: bool = True
    _all_received: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(
        self, pairs: Sequence[tuple[ClientConnection, ClientConnection]], *, rate: int, seconds: float
    ) -> None:
        readers = [asyncio.create_task(self._receive(receiver)) for _, receiver in pairs]
        readers += [asyncio.create_task(self._drain(sender)) for sender, _ in pairs]
        try:
            await self._send(pairs, rate=rate, seconds=seconds)
            self.sending = False
            if len(self.latencies_ms) >= self.sent:
                self._all_received.set()
            with contextlib.suppress(TimeoutError):  # what never arrives shows as received < sent
                await asyncio.wait_for(self._all_received.wait(), 10)
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    async def _send(
        self, pairs: Sequence[tuple[ClientConnection, ClientConnection]], *, rate: int, seconds: float
    ) -> None:
        tick_s = 0.01
        per_tick = rate * tick_s
        started = time.monotonic()
        owed = 0.0
        turn = 0
        while (elapsed := time.monotonic() - started) < seconds:
            owed += per_tick
            while owed >= 1:
                sender = pairs[turn % len(pairs)][0]
                turn += 1
                self.sent += 1
                event = {"type": "event", "id": uuid.uuid4().hex, "kind": "bench", "payload": {"t": time.time()}}
                await sender.send(orjson.dumps(event).decode())
                owed -= 1
            await asyncio.sleep(max(0.0, started + elapsed + tick_s - time.monotonic()))

    async def _receive(self, receiver: ClientConnection) -> None:
        async for raw in receiver:
            frame = orjson.loads(raw)
            if frame.get("type") == "event":
                self.latencies_ms.append((time.time() - frame["payload"]["t"]) * 1000)
                if not self.sending and len(self.latencies_ms) >= self.sent:
                    self._all_received.set()

    @staticmethod
    async def _drain(sender: ClientConnection) -> None:
        async for _ in sender:
            pass

    def quantiles(self) -> tuple[float, float, float]:
        ordered = sorted(self.latencies_ms)
        if len(ordered) < 2:
            return float("inf"), float("inf"), float("inf")
        cuts = statistics.quantiles(ordered, n=100, method="inclusive")
        return cuts[49], cuts[98], ordered[-1]
