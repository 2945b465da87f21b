"""Servers under test, each its own process on 127.0.0.1, with RSS and CPU readings."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import httpx

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# Idle: at most 2 clock ticks of CPU over a quarter of a second (heartbeats and timers).
_IDLE_PROBE_S = 0.25
_IDLE_CPU_S = 2 / _CLOCK_TICKS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    # Every server started and not yet stopped, so a measurement can wait for all to be idle.
    running: set[Server] = set()

    def __init__(
        self, name: str, command: Sequence[str], env: dict[str, str], cwd: Path, ready_path: str | None
    ) -> None:
        """``ready_path``: answered once the server is ready; None for a process
        that serves no HTTP (``keel worker``), which counts as ready once started."""
        self.name = name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.cwd = cwd
        self.log = open(cwd / f"{name}.log", "wb")  # noqa: SIM115
        full_env = {**os.environ, **env, "KEEL_PORT": str(self.port)}
        self.process = subprocess.Popen(
            [part.replace("{port}", str(self.port)) for part in command],
            env=full_env,
            cwd=cwd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        Server.running.add(self)
        if ready_path is not None:
            self._wait(ready_path)

    def _wait(self, path: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.log.name}")
            try:
                if httpx.get(f"{self.base_url}{path}", timeout=1).status_code < 500:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise TimeoutError(f"{self.name} did not become ready")

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS

    def stop(self) -> None:
        Server.running.discard(self)
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def wait_until_idle(servers: Iterable[Server], *, within_s: float = 15.0) -> None:
    """Return once no server burns CPU any more (or after ``within_s``): a
    server still working off the previous load — a baseline draining its
    queued inserts into the SQLite file the next scenario writes to, say —
    would otherwise land in the next measurement."""
    deadline = time.monotonic() + within_s
    servers = list(servers)
    while time.monotonic() < deadline:
        before = [server.cpu_seconds() for server in servers]
        time.sleep(_IDLE_PROBE_S)
        if all(server.cpu_seconds() - cpu <= _IDLE_CPU_S for server, cpu in zip(servers, before, strict=True)):
            return


def uvicorn(app: str, *, factory: bool = False, loop: str = "uvloop") -> list[str]:
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        app,
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        "1",
        "--loop",
        loop,
        "--http",
        "httptools",
        "--no-access-log",
        "--no-proxy-headers",
        "--no-server-header",
        "--log-level",
        "warning",
    ]
    return [*command, "--factory"] if factory else command
