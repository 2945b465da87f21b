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
