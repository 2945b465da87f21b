"""keel as a real process on 127.0.0.1: startup, limits at the socket, shutdown."""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fixtures.servers import ServerProcess, keel_test_server


@pytest.fixture
def server_env(database_url: str) -> dict[str, str]:
    return {"KEEL_ENV": "test", "KEEL_DATABASE_URL": database_url, "KEEL_SHUTDOWN_GRACE_S": "10"}


@pytest.fixture
def server(server_env: dict[str, str]) -> Iterator[ServerProcess]:
    process = keel_test_server(server_env)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


@pytest.mark.sqlite
@pytest.mark.readiness("ops.serve_embedded_default")
def test_keel_serve_migrates_and_serves_in_development(tmp_path: Path) -> None:
    """What the README's run command does: a fresh SQLite file, migrated, ready."""
    process = ServerProcess([sys.executable, "-m", "keel.cli", "serve"], {"KEEL_ENV": "development"}, cwd=tmp_path)
    try:
        process.wait_ready()
        ready = httpx.get(f"{process.base_url}/health/ready", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["schema"]["status"] == "ok"
        assert (tmp_path / "keel.db").exists()
        assert httpx.get(f"{process.base_url}/docs", timeout=5).status_code == 200
    finally:
        process.stop()


@pytest.mark.readiness("http.header_limit")
def test_huge_header_over_a_real_socket_is_rejected_and_server_survives(server: ServerProcess) -> None:
    response = httpx.get(f"{server.base_url}/health/live", headers={"x-big": "b" * 40_000}, timeout=5)
    assert response.status_code == 431
    assert response.headers["content-type"] == "application/problem+json"
    assert httpx.get(f"{server.base_url}/health/live", timeout=5).status_code == 200


@pytest.mark.readiness("http.body_limit")
def test_huge_body_over_a_real_socket_is_413(server: ServerProcess) -> None:
    def body() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(64):
            yield b"x" * 65536
        yield b'"}'

    response = httpx.post(
        f"{server.base_url}/test/echo", content=body(), headers={"content-type": "application/json"}, timeout=10
    )
    assert response.status_code == 413
    assert httpx.get(f"{server.base_url}/health/live", timeout=5).status_code == 200


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.readiness("ops.graceful_shutdown")
def test_sigterm_finishes_in_flight_requests_then_exits(server: ServerProcess) -> None:
    result: dict[str, object] = {}

    def slow_request() -> None:
        try:
            response = httpx.get(f"{server.base_url}/test/slow", params={"seconds": 2}, timeout=15)
            result["status"] = response.status_code
        except httpx.HTTPError as exc:
            result["error"] = repr(exc)

    thread = threading.Thread(target=slow_request)
    thread.start()
    time.sleep(0.5)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert not _port_open(server.port), "still accepting connections after SIGTERM"
    thread.join(timeout=15)
    assert result == {"status": 200}
    # uvicorn re-raises the signal once shut down, so the exit reads as SIGTERM.
    assert server.process.wait(timeout=15) in (0, -signal.SIGTERM)
    logs = server.logs()
    assert "keel.stopping" in logs  # lifespan shutdown ran: pools closed
    assert "Traceback" not in logs


@pytest.mark.readiness("ops.graceful_shutdown")
def test_shutdown_grace_period_bounds_the_wait(server_env: dict[str, str]) -> None:
    process = keel_test_server({**server_env, "KEEL_SHUTDOWN_GRACE_S": "1", "KEEL_REQUEST_TIMEOUT_S": "60"})
    try:
        process.wait_ready()
        thread = threading.Thread(
            target=lambda: httpx.get(f"{process.base_url}/test/slow", params={"seconds": 30}, timeout=40),
            daemon=True,
        )
        thread.start()
        time.sleep(0.5)
        started = time.monotonic()
        process.process.send_signal(signal.SIGTERM)
        process.process.wait(timeout=15)
        assert time.monotonic() - started < 10
    finally:
        process.stop()


def _slow_body_request(port: int) -> socket.socket:
    """A login whose body never arrives: headers promise 1,000 bytes, 4 are sent."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    sock.sendall(
        b"POST /api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"em'
    )
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


@pytest.mark.readiness("http.slow_clients")
def test_clients_sending_bodies_slowly_do_not_crowd_out_the_rest(server_env: dict[str, str]) -> None:
    """Twenty clients stalled mid-body, five places for handlers: every other
    request is still served, and each stalled client gets a 408 and a closed
    connection once its body is overdue."""
    process = keel_test_server({**server_env, "KEEL_MAX_IN_FLIGHT": "5", "KEEL_CLIENT_TIMEOUT_S": "2"})
    try:
        process.wait_ready()
        stalled = [_slow_body_request(process.port) for _ in range(20)]
        try:
            with httpx.Client(base_url=process.base_url, timeout=10) as client:
                for _ in range(10):
                    login = client.post("/api/v1/auth/login", json={"email": "nobody@example.com", "password": "x"})
                    assert login.status_code == 401, login.text
            for sock in stalled:
                answer = _read_until_closed(sock)
                assert answer.startswith(b"HTTP/1.1 408 "), answer[:200]
                assert b"application/problem+json" in answer
        finally:
            for sock in stalled:
                sock.close()
    finally:
        process.stop()


@pytest.mark.readiness("http.slow_clients")
def test_connections_without_complete_headers_are_closed(server_env: dict[str, str]) -> None:
    """A connection that sends nothing, half a request line, or half its
    headers is closed once the client timeout passes; the server serves on."""
    process = keel_test_server({**server_env, "KEEL_CLIENT_TIMEOUT_S": "1"})
    try:
        process.wait_ready()
        partial = [b"", b"GET /health/li", b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: "]
        sockets = [socket.create_connection(("127.0.0.1", process.port), timeout=15) for _ in range(4)]
        try:
            for sock, sent in zip(sockets, partial, strict=False):
                sock.sendall(sent)
            # A kept-alive connection: one whole request answered, then half the next one.
            kept_alive = sockets[-1]
            kept_alive.sendall(b"GET /health/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            answer = b""
            while not answer.endswith(b"}"):  # the whole response: headers and JSON body
                answer += kept_alive.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200 ")
            kept_alive.sendall(b"GET /health/live HTTP/1.1\r\nHo")
            for sock in sockets:
                assert _read_until_closed(sock) == b""  # closed, and nothing (more) answered
            assert httpx.get(f"{process.base_url}/health/live", timeout=5).status_code == 200
        finally:
            for sock in sockets:
                sock.close()
    finally:
        process.stop()
