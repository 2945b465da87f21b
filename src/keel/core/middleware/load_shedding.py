"""When to refuse a request at once rather than queue it.

Two signals, both cheap to read per request:

- requests in flight above ``max_in_flight``: work that waits on I/O (a
  PostgreSQL pool, Redis) piles up here;
- the event loop not having come back to a 10 ms heartbeat for over
  ``max_stall_s`` *and* the heartbeat before having run late too: with
  CPU-bound work requests wait in the loop's queue and
  in sockets, not in the application, so the in-flight count stays low; a
  request that starts after such a stretch has already waited through it.
  One stretch alone (a WAL checkpoint, a full garbage collection) is not
  overload, and the requests right after it are served. (Queueing spread
  over many shorter stretches is not seen by either signal.)

A shed request costs a fraction of a millisecond, so under overload the
accepted requests keep a bounded latency instead of all of them slowing down
until clients time out.
"""

from __future__ import annotations

import asyncio

from starlette.types import Scope

# Probes must answer while keel sheds load, or an orchestrator restarts a busy process.
_NEVER_SHED = ("/health/", "/metrics")
_HEARTBEAT_S = 0.01


class LoadShedder:
    def __init__(self, *, max_in_flight: int, max_stall_s: float) -> None:
        self.max_in_flight = max_in_flight
        self.max_stall_s = max_stall_s
        self.in_flight = 0
        self.last_heartbeat = 0.0
        self.last_lateness = 0.0  # how late the last heartbeat ran
        self._loop: asyncio.AbstractEventLoop | None = None

    def _beat(self) -> None:
        assert self._loop is not None
        moment = self._loop.time()
        if self.last_heartbeat:
            self.last_lateness = moment - self.last_heartbeat - _HEARTBEAT_S
        self.last_heartbeat = moment
        if not self._loop.is_closed():
            self._loop.call_later(_HEARTBEAT_S, self._beat)

    def _stalled(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Behind now, and already behind before this stretch: a sustained stall."""
        return loop.time() - self.last_heartbeat > self.max_stall_s and self.last_lateness > self.max_stall_s / 2

    def should_shed(self, scope: Scope) -> bool:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # first request on this loop: start the heartbeat
            self._loop = loop
            self._beat()
            return False
        overloaded = self.in_flight >= self.max_in_flight or self._stalled(loop)
        return overloaded and not scope["path"].startswith(_NEVER_SHED)
