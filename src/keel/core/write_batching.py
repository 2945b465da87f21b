"""A connection's writes of one loop iteration, sent as one.

uvicorn writes a response in two transport calls, the status line and
headers, then the body; uvloop sends each at once, so every response cost two
``send`` system calls and two TCP segments (the client pays twice too). A
connection's transport is wrapped here so that writes made during a loop
iteration are joined and handed to the real transport at the end of that
iteration: one system call per response, and nothing waits longer than the
iteration that wrote it. Closing flushes first; aborting drops, as it does
for the transport's own buffer. A batch that reaches 64 KiB is handed over
at once, so a body streamed without a pause still meets the transport's
flow control (it pauses the writer when the socket cannot keep up).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

ProtocolFactory = Callable[[], asyncio.BaseProtocol]
FLUSH_AT_BYTES = 64 * 1024


class BatchedTransport:
    """Delegates to ``transport``; ``write`` gathers until the iteration ends."""

    __slots__ = ("_loop", "_pending", "_pending_bytes", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []
        self._pending_bytes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        chunk = bytes(data)
        self._pending.append(chunk)
        self._pending_bytes += len(chunk)
        if self._pending_bytes >= FLUSH_AT_BYTES:
            self._flush()

    def writelines(self, lines: Iterable[bytes | bytearray | memoryview]) -> None:
        for data in lines:
            self.write(data)

    def _flush(self) -> None:
        if not self._pending:
            return
        data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending.clear()
        self._pending_bytes = 0
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._pending.clear()
        self._pending_bytes = 0
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._pending_bytes

    def __getattr__(self, name: str) -> Any:
        # get_extra_info, is_closing, pause_reading, resume_reading, set_protocol, ...
        return getattr(self._transport, name)


class _Batching(asyncio.Protocol):
    """Hands the wrapped protocol a BatchedTransport; passes every event on."""

    def __init__(self, protocol: asyncio.Protocol) -> None:
        self.protocol = protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        batched = BatchedTransport(transport, asyncio.get_running_loop())  # type: ignore[arg-type]
        self.protocol.connection_made(batched)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self.protocol.data_received(data)

    def eof_received(self) -> bool | None:
        return self.protocol.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self.protocol.connection_lost(exc)

    def pause_writing(self) -> None:
        self.protocol.pause_writing()

    def resume_writing(self) -> None:
        self.protocol.resume_writing()


def batching_writes(protocol_factory: ProtocolFactory) -> Callable[[], asyncio.Protocol]:
    """``protocol_factory``'s protocols, writing through a BatchedTransport."""

    def build() -> asyncio.Protocol:
        protocol = protocol_factory()
        assert isinstance(protocol, asyncio.Protocol)
        return _Batching(protocol)

    return build
