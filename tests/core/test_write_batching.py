"""A connection's writes of one loop iteration leave as one, on uvloop's own
transports: nothing is sent before the iteration ends, then everything at
once; closing sends what is pending first, aborting drops it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import pytest

from keel.core.event_loop import EagerAcceptLoop
from keel.core.write_batching import FLUSH_AT_BYTES, BatchedTransport


class _Plain(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost.set_result(None)


Scenario = Callable[[EagerAcceptLoop, BatchedTransport, socket.socket, _Plain], Awaitable[None]]


def _run(scenario: Scenario) -> None:
    async def connected(loop: EagerAcceptLoop) -> None:
        ours, peer = socket.socketpair()
        peer.setblocking(False)
        transport, protocol = await loop.create_unix_connection(_Plain, sock=ours)
        try:
            await scenario(loop, BatchedTransport(transport, loop), peer, protocol)
        finally:
            transport.close()
            peer.close()

    loop = EagerAcceptLoop()
    try:
        loop.run_until_complete(connected(loop))
    finally:
        loop.close()


def _nothing_received(peer: socket.socket) -> bool:
    try:
        peer.recv(65536)
    except BlockingIOError:
        return True
    return False


async def _received(peer: socket.socket) -> bytes:
    for _ in range(100):
        try:
            return peer.recv(65536)
        except BlockingIOError:
            await asyncio.sleep(0.01)
    raise AssertionError("nothing arrived")


def test_writes_of_one_iteration_leave_together_when_it_ends() -> None:
    async def scenario(loop: EagerAcceptLoop, batched: BatchedTransport, peer: socket.socket, _: _Plain) -> None:
        batched.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        batched.writelines([b"o", bytearray(b"k")])
        assert _nothing_received(peer)
        assert batched.get_write_buffer_size() == 40
        await asyncio.sleep(0)
        assert await _received(peer) == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
        batched.write(b"next")  # a later iteration's writes are a batch of their own
        await asyncio.sleep(0)
        assert await _received(peer) == b"next"

    _run(scenario)


def test_a_large_batch_is_handed_over_without_waiting_for_the_iteration() -> None:
    """A body streamed without a pause meets the transport's flow control."""

    async def scenario(loop: EagerAcceptLoop, batched: BatchedTransport, peer: socket.socket, _: _Plain) -> None:
        chunk = b"x" * 16384
        for _ in range(FLUSH_AT_BYTES // len(chunk) - 1):
            batched.write(chunk)
        assert _nothing_received(peer)
        batched.write(memoryview(chunk))
        assert batched.get_write_buffer_size() == 0
        assert len(peer.recv(FLUSH_AT_BYTES)) > 0

    _run(scenario)


def test_closing_sends_what_is_pending_first() -> None:
    async def scenario(loop: EagerAcceptLoop, batched: BatchedTransport, peer: socket.socket, plain: _Plain) -> None:
        batched.write(b"last words")
        batched.close()
        assert batched.is_closing()
        await plain.lost
        assert await _received(peer) == b"last words"
        assert peer.recv(1) == b""  # then the end of the stream

    _run(scenario)


def test_aborting_drops_what_is_pending() -> None:
    async def scenario(loop: EagerAcceptLoop, batched: BatchedTransport, peer: socket.socket, plain: _Plain) -> None:
        batched.write(b"never sent")
        batched.abort()
        await plain.lost
        await asyncio.sleep(0)
        assert peer.recv(65536) == b""

    _run(scenario)


@pytest.mark.readiness("http.one_write_per_response")
def test_keel_servers_connections_write_in_batches() -> None:
    """A server on keel's loop hands its protocols batching transports, which
    send what they are given as usual."""
    made: list[asyncio.BaseTransport] = []

    class Answering(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            made.append(transport)

        def data_received(self, data: bytes) -> None:  # as uvicorn writes: headers, then body
            transport = made[0]
            assert isinstance(transport, BatchedTransport)
            transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
            transport.write(b"ok")

    async def scenario(loop: EagerAcceptLoop) -> None:
        server = await loop.create_server(Answering, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        client.setblocking(False)
        try:
            client.send(b"GET / HTTP/1.1\r\n\r\n")
            assert await _received(client) == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"
            assert made[0].get_extra_info("peername") == client.getsockname()
        finally:
            client.close()
            server.close()
            await server.wait_closed()

    loop = EagerAcceptLoop()
    try:
        loop.run_until_complete(scenario(loop))
    finally:
        loop.close()
