"""Two keel processes on one database and one Redis: a device on each, events
both ways in order; a revocation on one closes the socket on the other; a
device connected to one is online in the other's device list;
Redis killed mid-stream and restarted loses no event; a crashed process's
sessions leave presence."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.accounts import API, register
from tests.fixtures.realtime import Live, RedisServer, add_device, closed_with, open_session, receive, send
from tests.fixtures.servers import ServerProcess, free_port
from tests.fixtures.waiting import eventually

SECRET_KEY = "test-secret-key-" + "p" * 32


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), str(tmp_path))
    server.start()
    yield server
    server.kill()


class Process:
    """A keel process as the tests see it: HTTP and the WebSocket URL."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.http = httpx.AsyncClient(base_url=server.base_url, timeout=30)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}{API}/ws"


@pytest.fixture
async def processes(database_url: str, redis_server: RedisServer) -> AsyncIterator[list[Process]]:
    if database_url.startswith("sqlite") and ":memory:" in database_url:
        pytest.fail("two processes need a database file or server")
    env = {
        "KEEL_ENV": "test",
        "KEEL_SECRET_KEY": SECRET_KEY,
        "KEEL_DATABASE_URL": database_url,
        "KEEL_REDIS_URL": redis_server.url,
        "KEEL_REDIS_TIMEOUT_S": "0.5",
        "KEEL_REALTIME_PRESENCE_TTL_S": "1.5",
        "KEEL_REALTIME_MESSAGES_PER_S": "10000",
        "KEEL_LOG_LEVEL": "WARNING",
        "KEEL_RATE_LIMITS": "off",
    }
    started = [ServerProcess([sys.executable, "-m", "keel.cli", "serve"], env) for _ in range(2)]
    for server in started:
        server.wait_ready()
    running = [Process(server) for server in started]
    yield running
    for process in running:
        await process.http.aclose()
        process.server.stop()


def as_live(process: Process) -> Live:
    """The helpers speak to a Live; a process offers the same two URLs."""
    live = Live.__new__(Live)
    live.http = process.http
    live.port = process.server.port
    return live


async def test_devices_on_two_processes_exchange_events_in_order(processes: list[Process]) -> None:
    one, two = (as_live(p) for p in processes)
    owner = await register(one.http)
    phone, laptop = await add_device(one, owner), await add_device(two, owner)
    a, _ = await open_session(one, phone)
    b, _ = await open_session(two, laptop)
    for n in range(50):
        await send(a, type="event", id=f"a-{n}", kind="k", payload=n)
        await send(b, type="event", id=f"b-{n}", kind="k", payload=n)
    a_frames = [await receive(a) for _ in range(100)]  # its 50 acks and b's 50 events, in whatever mix
    b_frames = [await receive(b) for _ in range(100)]
    a_events = [f for f in a_frames if f["type"] == "event"]
    b_events = [f for f in b_frames if f["type"] == "event"]
    assert [e["id"] for e in a_events] == [f"b-{n}" for n in range(50)]
    assert [e["id"] for e in b_events] == [f"a-{n}" for n in range(50)]
    for frames in (a_events, b_events):
        assert [e["seq"] for e in frames] == sorted(e["seq"] for e in frames)
    acked = sorted(f["seq"] for f in a_frames + b_frames if f["type"] == "ack")
    assert acked == list(range(1, 101))
    await a.close()
    await b.close()


async def test_a_revocation_on_one_process_closes_the_socket_on_the_other(processes: list[Process]) -> None:
    one, two = (as_live(p) for p in processes)
    owner = await register(one.http)
    laptop = await add_device(one, owner)
    b, _ = await open_session(two, laptop)
    assert (await one.http.delete(f"{API}/devices/{laptop.id}", headers=owner.headers)).status_code == 204
    assert await closed_with(b, timeout_s=1.0) == 4403


async def test_a_device_connected_to_one_process_is_online_in_the_others_list(processes: list[Process]) -> None:
    one, two = (as_live(p) for p in processes)
    owner = await register(one.http)
    laptop, phone = await add_device(one, owner), await add_device(one, owner)
    b, _ = await open_session(two, laptop)

    async def online() -> dict[str, bool]:
        listed = (await one.http.get(f"{API}/devices", headers=owner.headers)).json()["items"]
        return {device["id"]: device["online"] for device in listed}

    assert await online() == {laptop.id: True, phone.id: False}
    await b.close()

    async def offline() -> bool:
        return await online() == {laptop.id: False, phone.id: False}

    assert await eventually(offline, within_s=5)


async def test_redis_killed_mid_stream_loses_no_event(processes: list[Process], redis_server: RedisServer) -> None:
    one, two = (as_live(p) for p in processes)
    owner = await register(one.http)
    phone, laptop = await add_device(one, owner), await add_device(two, owner)
    a, _ = await open_session(one, phone)
    b, _ = await open_session(two, laptop)
    seen: list[int] = []

    async def listen() -> None:
        while True:
            frame = await receive(b, timeout_s=30)
            if frame["type"] == "event":
                seen.append(frame["seq"])

    listening = asyncio.create_task(listen())
    for n in range(60):
        if n == 20:
            redis_server.kill()
        if n == 40:
            redis_server.start()
        await send(a, type="event", id=f"e-{n}", kind="k", payload=n)
        assert (await receive(a))["type"] == "ack"
        await asyncio.sleep(0.05)

    async def all_seen() -> bool:
        return len(seen) >= 60

    assert await eventually(all_seen, within_s=15)  # the gap is read from the database once pub/sub is back
    listening.cancel()
    assert seen == list(range(1, 61))
    # And a device that was away for all of it resumes with everything.
    c, _ = await open_session(two, laptop)
    await send(c, type="resume", after_seq=0)
    assert [(await receive(c))["seq"] for _ in range(60)] == list(range(1, 61))
    for ws in (a, b, c):
        await ws.close()


async def test_a_crashed_processs_sessions_leave_presence(processes: list[Process]) -> None:
    one, two = (as_live(p) for p in processes)
    owner = await register(one.http)
    b, _ = await open_session(two, await add_device(two, owner))

    async def online() -> int:
        response = await one.http.get(f"{API}/orgs/{owner.personal_org_id}/presence", headers=owner.headers)
        return len(response.json()["items"])

    assert await online() == 1
    os.kill(processes[1].server.process.pid, signal.SIGKILL)
    processes[1].server.process.wait()

    async def gone() -> bool:
        return await online() == 0

    assert await eventually(gone, within_s=5)  # the TTL (1.5 s) without a refresh
    del b
