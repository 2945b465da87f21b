"""The server's event loop: uvloop, accepting every pending connection per wakeup."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable

import pytest

from keel.core.accelerators.eager_accept import EagerAcceptLoop, EagerAcceptServer


class _Counting(asyncio.Protocol):
    made: list[asyncio.BaseTransport]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made.append(transport)


def _run(scenario: Callable[[EagerAcceptLoop], Awaitable[None]]) -> None:
    loop = EagerAcceptLoop()
    try:
        loop.run_until_complete(scenario(loop))
    finally:
        loop.close()


@pytest.mark.readiness("http.accept_under_load")
def test_a_burst_of_connections_is_accepted_within_a_few_loop_passes() -> None:
    """uvloop's own accept takes one pass per connection, and a saturated pass is long."""

    async def scenario(loop: EagerAcceptLoop) -> None:
        made: list[asyncio.BaseTransport] = []
        protocol = type("Counting", (_Counting,), {"made": made})
        server = await loop.create_server(protocol, "127.0.0.1", 0, backlog=128)
        assert isinstance(server, EagerAcceptServer)
        port = server.sockets[0].getsockname()[1]
        # Loopback connects complete in the kernel's backlog before the loop runs again.
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(50)]
        try:
            for _ in range(6):
                await asyncio.sleep(0)
            assert len(made) == 50
            clients[0].sendall(b"x")  # the transports are uvloop's own and work as usual
            for transport in made:
                transport.close()
        finally:
            for client in clients:
                client.close()
            server.close()
            await server.wait_closed()

    _run(scenario)


def test_a_closed_server_stops_accepting_and_releases_its_port() -> None:
    async def scenario(loop: EagerAcceptLoop) -> None:
        made: list[asyncio.BaseTransport] = []
        server = await loop.create_server(type("Counting", (_Counting,), {"made": made}), "127.0.0.1", 0)
        assert isinstance(server, EagerAcceptServer)
        port = server.sockets[0].getsockname()[1]
        assert server.is_serving()
        server.close()
        await server.wait_closed()
        assert not server.is_serving()
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=2)
        # The port is free again: another server may listen on it at once.
        again = await loop.create_server(asyncio.Protocol, "127.0.0.1", port)
        again.close()
        await again.wait_closed()

    _run(scenario)


def test_a_given_listening_socket_is_served_as_is() -> None:
    """uvicorn's multi-worker mode hands each worker the socket it bound."""

    async def scenario(loop: EagerAcceptLoop) -> None:
        listener = socket.create_server(("127.0.0.1", 0))
        made: list[asyncio.BaseTransport] = []
        server = await loop.create_server(type("Counting", (_Counting,), {"made": made}), sock=listener)
        assert isinstance(server, EagerAcceptServer)
        assert server.sockets == (listener,)
        with socket.create_connection(listener.getsockname()):
            for _ in range(4):
                await asyncio.sleep(0)
            assert len(made) == 1
        server.close()
        await server.wait_closed()

    _run(scenario)


_OUT_OF_DESCRIPTORS = textwrap.dedent(
    """
    import asyncio, os, resource, sys
    from keel.core.accelerators.eager_accept import EagerAcceptLoop

    class Hello(asyncio.Protocol):
        def connection_made(self, transport):
            transport.write(b"hi")
            transport.close()

    async def main():
        server = await asyncio.get_running_loop().create_server(Hello, "127.0.0.1", 0)
        # Room for two connections at a time, no more.
        in_use = len(os.listdir("/proc/self/fd"))
        resource.setrlimit(resource.RLIMIT_NOFILE, (in_use + 2, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        print(server.sockets[0].getsockname()[1], flush=True)
        await asyncio.sleep(60)

    loop = EagerAcceptLoop()
    loop.run_until_complete(main())
    """
)


def test_running_out_of_descriptors_pauses_accepting_and_serves_everyone_after() -> None:
    """EMFILE neither crashes the server nor spins on the readable socket."""
    server = subprocess.Popen(
        [sys.executable, "-c", _OUT_OF_DESCRIPTORS], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        clients = [socket.create_connection(("127.0.0.1", port), timeout=15) for _ in range(6)]
        answers = [client.recv(16) for client in clients]
        assert answers == [b"hi"] * 6
        assert server.poll() is None
        for client in clients:
            client.close()
    finally:
        server.kill()
        output = server.communicate()[0].decode()
    assert "server.accept_failed" in output
    assert "EMFILE" in output
