"""wrk, driven with a generated Lua script; bounded in time, 127.0.0.1 only."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

_LUA = r"""
wrk.method = "%(method)s"
wrk.path = "%(path)s"
wrk.headers["Authorization"] = "%(authorization)s"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
request = function()
  if wrk.method == "POST" then
    counter = counter + 1
    return wrk.format(nil, nil, nil, '{"title": "bench task ' .. counter .. '"}')
  end
  return wrk.format()
end
local failures = 0
response = function(status, headers, body)
  if status >= 400 then failures = failures + 1 end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write("BENCH-JSON " .. string.format(
    '{"requests": %%d, "duration_us": %%d, "socket_errors": %%d, "status_errors": %%d, ' ..
    '"p50_us": %%d, "p90_us": %%d, "p99_us": %%d}',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)) .. "\n")
end
"""


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(
    port: int, path: str, *, method: str = "GET", token: str = "", connections: int = 16, seconds: int = 8
) -> LoadResult:
    script = _LUA % {"method": method, "path": path, "authorization": f"Bearer {token}" if token else ""}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        completed = subprocess.run(
            [
                "wrk",
                "-t",
                "2",
                "-c",
                str(connections),
                "-d",
                f"{seconds}s",
                "--timeout",
                "5s",
                "-s",
                handle.name,
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=True,
        )
    finally:
        Path(handle.name).unlink()
    line = next(line for line in completed.stdout.splitlines() if line.startswith("BENCH-JSON "))
    data = json.loads(line.removeprefix("BENCH-JSON "))
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        errors=data["socket_errors"] + data["status_errors"],
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )
