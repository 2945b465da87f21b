"""Accelerator: uvloop with listening sockets that accept every pending connection per wakeup.

What it replaces: uvloop's own accept. libuv accepts one connection each time
a listening socket polls readable, that is one per loop iteration (a
deliberate libuv choice). A saturated process runs long
iterations, so a burst of new connections waited in the kernel's backlog,
where load shedding cannot answer them: 256 clients connecting at once to a
busy server waited up to 10 s to be accepted. Here the listening socket is
read by a reader callback that accepts everything pending, as asyncio's own
loop does, and each connection gets uvloop's C transport through
``connect_accepted_socket``. Measured effect, and the A/B that keeps it:
docs/performance.md ("Accelerators").

`new_event_loop` is the loop factory `keel serve` gives uvicorn.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Callable
from typing import Any

import uvloop

from keel.core.logging import get_logger

_log = get_logger("keel.server")

# Per wakeup, like asyncio's loop: enough to drain a burst, bounded so that a
# flood of connections cannot starve the requests already accepted.
_ACCEPTS_PER_WAKEUP = 256
# Out of descriptors or memory: stop accepting for a moment (the kernel's
# backlog holds the connections) instead of spinning on a readable socket.
_RETRY_AFTER_RESOURCE_ERROR_S = 1.0
_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})

ProtocolFactory = Callable[[], asyncio.BaseProtocol]


class EagerAcceptServer(asyncio.AbstractServer):
    """Listening sockets read by the loop's reader callbacks."""

    def __init__(self, loop: EagerAcceptLoop, protocol_factory: ProtocolFactory, sockets: list[socket.socket]) -> None:
        self._loop = loop
        self._protocol_factory = protocol_factory
        self._sockets = sockets
        self._serving = False
        self._closed = asyncio.Event()
        self._connecting: set[asyncio.Task[Any]] = set()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self._sockets)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def is_serving(self) -> bool:
        return self._serving

    async def start_serving(self) -> None:
        if self._serving or self._closed.is_set():
            return
        self._serving = True
        for listener in self._sockets:
            self._loop.add_reader(listener.fileno(), self._accept_pending, listener)

    async def serve_forever(self) -> None:
        await self.start_serving()
        await self._closed.wait()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._serving = False
        for listener in self._sockets:
            self._loop.remove_reader(listener.fileno())
            listener.close()
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def _accept_pending(self, listener: socket.socket) -> None:
        for _ in range(_ACCEPTS_PER_WAKEUP):
            try:
                connection, _address = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as error:
                if error.errno not in _RESOURCE_ERRORS:
                    raise
                _log.error(
                    "server.accept_failed",
                    error=errno.errorcode[error.errno],
                    retry_in_s=_RETRY_AFTER_RESOURCE_ERROR_S,
                )
                self._pause(listener)
                return
            connection.setblocking(False)
            task = self._loop.create_task(self._connect(connection))
            self._connecting.add(task)
            task.add_done_callback(self._connecting.discard)

    async def _connect(self, connection: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._protocol_factory, connection)
        except OSError:  # the client went away before its transport was set up
            connection.close()

    def _pause(self, listener: socket.socket) -> None:
        self._loop.remove_reader(listener.fileno())

        def resume() -> None:
            if self._serving:
                self._loop.add_reader(listener.fileno(), self._accept_pending, listener)

        self._loop.call_later(_RETRY_AFTER_RESOURCE_ERROR_S, resume)


class EagerAcceptLoop(uvloop.Loop):
    """uvloop whose plain TCP servers accept every pending connection per wakeup."""

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: ProtocolFactory,
        host: str | None = None,
        port: int | None = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        **options: Any,
    ) -> asyncio.AbstractServer:
        if ssl is not None or options:  # TLS and the rarer options: uvloop's own server
            stock: dict[str, Any] = {"host": host, "port": port, "sock": sock, "backlog": backlog, "ssl": ssl}
            return await super().create_server(protocol_factory, **stock, **options)
        sockets = [sock] if sock is not None else await self._listen(host, port or 0, backlog)
        for listener in sockets:
            listener.setblocking(False)
        server = EagerAcceptServer(self, protocol_factory, sockets)
        await server.start_serving()
        return server

    async def _listen(self, host: str | None, port: int, backlog: int) -> list[socket.socket]:
        found = await self.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        addresses = dict.fromkeys((family, address) for family, *_rest, address in found)
        listeners: list[socket.socket] = []
        try:
            for family, address in addresses:
                listeners.append(_bound(family, address, backlog))
        except OSError:
            for listener in listeners:
                listener.close()
            raise
        return listeners


def _bound(family: int, address: Any, backlog: int) -> socket.socket:
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        listener.bind(address)
        listener.listen(backlog)
    except OSError:
        listener.close()
        raise
    return listener


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvicorn's loop factory (its ``loop`` option takes this import path)."""
    return EagerAcceptLoop()
