"""wrk, driven with a generated Lua script; bounded in time, 127.0.0.1 only."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Counts answers by kind (wrk itself only counts non-2xx/3xx) in each thread's
# Lua state, sums them over the threads at the end, and prints one JSON line.
_COUNTING = r"""
local threads = {}
setup = function(thread) table.insert(threads, thread) end
shed, rate_limited, server_errors, client_errors = 0, 0, 0, 0
response = function(status, headers, body)
  if status == 503 then shed = shed + 1
  elseif status == 429 then rate_limited = rate_limited + 1
  elseif status >= 500 then server_errors = server_errors + 1
  elseif status >= 400 then client_errors = client_errors + 1 end
  if on_body then on_body(body) end
end
done = function(summary, latency, requests)
  local totals = {shed = 0, rate_limited = 0, server_errors = 0, client_errors = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do totals[name] = totals[name] + thread:get(name) end
  end
  local e = summary.errors
  io.write("BENCH-JSON " .. string.format(
    '{"requests": %d, "duration_us": %d, "socket_errors": %d, "shed": %d, "rate_limited": %d, ' ..
    '"server_errors": %d, "client_errors": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d}',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, totals.shed,
    totals.rate_limited, totals.server_errors, totals.client_errors,
    latency:percentile(50), latency:percentile(90), latency:percentile(99)) .. "\n")
end
"""

_SINGLE = r"""
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
"""

# A list walked page by page: each answer's next_cursor is queued, and the
# next request sent (wrk sends it on the same connection, straight after
# reading the answer) takes the newest one, so every connection follows its
# own chain of cursors; a chain that ends, or an answer without a cursor,
# starts again at the first page. The cursor is looked for in the body's
# tail only, where both keel and the baseline write it.
_FOLLOWING = r"""
wrk.method = "GET"
wrk.headers["Authorization"] = "%(authorization)s"
local first = "%(path)s"
local cursors = {}
local marker = '"next_cursor":"'
request = function()
  local cursor = table.remove(cursors)
  if cursor then return wrk.format(nil, first .. "&cursor=" .. cursor) end
  return wrk.format(nil, first)
end
on_body = function(body)
  local at = string.find(body, marker, -2048, true)
  if at then
    local start = at + #marker
    local stop = string.find(body, '"', start, true)
    if stop then table.insert(cursors, string.sub(body, start, stop - 1)) end
  end
end
"""

# 80% reads (task get and list alternately) / 20% task creates, each request
# from a random one of the seeded users, in that user's org.
_MIXED = r"""
local users = {%(users)s}
local counter = 0
init = function(args) math.randomseed(os.time() + math.floor(os.clock() * 1e6)) end
request = function()
  local user = users[math.random(#users)]
  local headers = {["Authorization"] = "Bearer " .. user[1], ["Content-Type"] = "application/json"}
  local tasks = "/api/v1/orgs/" .. user[2] .. "/tasks"
  local dice = math.random(100)
  if dice <= 20 then
    counter = counter + 1
    return wrk.format("POST", tasks, headers, '{"title": "mixed task ' .. counter .. '"}')
  elseif dice <= 60 then
    return wrk.format("GET", tasks .. "/" .. user[3], headers)
  end
  return wrk.format("GET", tasks .. "?limit=50", headers)
end
"""


@dataclass(frozen=True)
class MixedUser:
    token: str
    org_id: str
    task_id: str


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    socket_errors: int
    shed: int
    rate_limited: int
    server_errors: int
    client_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def errors(self) -> int:
        """Everything that is not a success, deliberate 503s included."""
        return self.socket_errors + self.shed + self.rate_limited + self.server_errors + self.client_errors


def wrk_available() -> bool:
    """Whether wrk is installed; says how to get it when it is not."""
    if shutil.which("wrk") is not None:
        return True
    print("bench: wrk is missing (Debian package 'wrk'); `make bench` installs it", file=sys.stderr)
    return False


def run_wrk(
    port: int,
    path: str = "/",
    *,
    method: str = "GET",
    token: str = "",
    connections: int = 16,
    seconds: int = 8,
    mixed: Sequence[MixedUser] = (),
    follow_cursors: bool = False,
    pause_ms: int = 0,
) -> LoadResult:
    """``follow_cursors``: ``path`` is a list's first page (with a query
    string); each connection walks on through its next_cursor.
    ``pause_ms``: each connection waits this long after an answer before
    its next request, so that together they send about
    ``connections * 1000 / pause_ms`` requests/s (a set load, well below
    what the server can take, rather than as many as it answers) while
    answers take much less than the pause."""
    authorization = f"Bearer {token}" if token else ""
    if mixed:
        users = ", ".join(f'{{"{u.token}", "{u.org_id}", "{u.task_id}"}}' for u in mixed)
        script = _MIXED % {"users": users} + _COUNTING
    elif follow_cursors:
        script = _FOLLOWING % {"path": path, "authorization": authorization} + _COUNTING
    else:
        script = _SINGLE % {"method": method, "path": path, "authorization": authorization} + _COUNTING
    if pause_ms:
        script += f"\ndelay = function() return {pause_ms} end\n"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        completed = subprocess.run(
            [
                "wrk",
                "-t",
                str(min(2, connections)),  # wrk wants a connection per thread at least
                "-c",
                str(connections),
                "-d",
                f"{seconds}s",
                "--timeout",
                "10s",
                "-s",
                handle.name,
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
            check=True,
        )
    finally:
        Path(handle.name).unlink()
    line = next(line for line in completed.stdout.splitlines() if line.startswith("BENCH-JSON "))
    data = json.loads(line.removeprefix("BENCH-JSON "))
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        socket_errors=data["socket_errors"],
        shed=data["shed"],
        rate_limited=data["rate_limited"],
        server_errors=data["server_errors"],
        client_errors=data["client_errors"],
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
    )
