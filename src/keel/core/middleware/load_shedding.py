"""When to refuse a request at once rather than queue it.

Two signals, both cheap to read per request:

- requests in flight above ``max_in_flight``: work that waits on I/O (a
  PostgreSQL pool, Redis) piles up here;
- the event loop not having come back to its 10 ms heartbeat
  (``core/loop_health.py``) for over ``max_stall_s`` *and* the heartbeat
  before having run late too: with
  CPU-bound work requests wait in the loop's queue and
  in sockets, not in the application, so the in-flight count stays low; a
  request that starts after such a stretch has already waited through it.
  One stretch alone (a WAL checkpoint, a full garbage collection) is not
  overload, and the requests right after it are served. (Queueing spread
  over many shorter stretches is not seen by either signal.)

Below those, a request that finds every handler place taken waits for one,
in arrival order, for at most ``max_wait_s``, if fewer than ``max_queued``
are waiting already; otherwise it is refused at once. The wait turns a burst
into a short queue: refusing every request past the limit made clients retry
at once, and answering those retries took the CPU that serving needed.

A shed request costs a fraction of a millisecond, so under overload the
accepted requests keep a bounded latency instead of all of them slowing down
until clients time out.
"""

from __future__ import annotations

import asyncio
from collections import deque

from starlette.types import Scope

from keel.core.loop_health import LoopHeartbeat

# Probes must answer while keel sheds load, or an orchestrator restarts a busy process.
_NEVER_SHED = ("/health/", "/metrics")


def _handed_over(waiter: asyncio.Future[None]) -> bool:
    return waiter.done() and not waiter.cancelled()


class LoadShedder:
    def __init__(
        self,
        *,
        max_in_flight: int,
        max_stall_s: float,
        max_queued: int = 0,
        max_wait_s: float = 1.0,
        heartbeat: LoopHeartbeat | None = None,
    ) -> None:
        self.max_in_flight = max_in_flight
        self.max_stall_s = max_stall_s
        self.max_queued = max_queued
        self.max_wait_s = max_wait_s
        self.in_flight = 0
        self.waiting: deque[asyncio.Future[None]] = deque()
        self.heartbeat = heartbeat or LoopHeartbeat()

    def _stalled(self, loop: asyncio.AbstractEventLoop) -> bool:
        """Behind now, and already behind before this stretch: a sustained stall."""
        beat = self.heartbeat
        return loop.time() - beat.last > self.max_stall_s and beat.lateness > self.max_stall_s / 2

    @staticmethod
    def exempt(scope: Scope) -> bool:
        return bool(scope["path"].startswith(_NEVER_SHED))

    def should_shed(self, scope: Scope) -> bool:
        """Refuse at once: the loop is stalled, or every place is taken and the queue is full."""
        loop = asyncio.get_running_loop()
        if loop is not self.heartbeat.loop:  # first request on this loop: start the heartbeat
            self.heartbeat.start()
            return False
        full = self.in_flight >= self.max_in_flight and len(self.waiting) >= self.max_queued
        return (full or self._stalled(loop)) and not self.exempt(scope)

    async def take_place(self) -> bool:
        """A handler place, now or after a bounded wait in arrival order; False if none came in time."""
        if self.in_flight < self.max_in_flight and not self.waiting:
            self.in_flight += 1
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append(waiter)
        try:
            async with asyncio.timeout(self.max_wait_s):
                await waiter
        except TimeoutError:
            # A place handed over just as the wait ran out is this request's.
            return _handed_over(waiter)
        except BaseException:  # the request was cancelled while waiting
            if _handed_over(waiter):
                self.leave_place()
            raise
        finally:
            if waiter in self.waiting:
                self.waiting.remove(waiter)
        return True

    def leave_place(self) -> None:
        """Hand the place to the longest waiter, or free it."""
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)  # in_flight stays: the place changes hands
                return
        self.in_flight -= 1
