"""What held the event loop up: its lag, and the garbage collector's pauses.

Every request, WebSocket frame and timer of a keel process runs on one event
loop, so whatever holds the loop (a long computation, a collection walking
the objects of ten thousand live sessions) delays all of them at once.
Request latency shows the effect; ``keel_event_loop_lag_seconds`` and
``keel_gc_pause_seconds`` show the cause. The same heartbeat tells the load
shedder when the loop is stalled (``middleware/load_shedding.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from collections.abc import AsyncIterator
from typing import Any

from keel.core.metrics import Metrics

# A hold-up that spans a beat shows as that beat's lateness: every 10 ms,
# holds of tens of milliseconds are nearly all seen, at a cost too small to measure.
HEARTBEAT_S = 0.01


class LoopHeartbeat:
    """A callback due every ``every_s`` on the event loop, and how late it ran."""

    def __init__(self, metrics: Metrics | None = None, *, every_s: float = HEARTBEAT_S) -> None:
        self.metrics = metrics
        self.every_s = every_s
        self.loop: asyncio.AbstractEventLoop | None = None
        self.last = 0.0  # the loop's time at the last beat
        self.lateness = 0.0  # how late the last beat ran
        self._next: asyncio.TimerHandle | None = None

    def start(self) -> None:
        """Beat on the running loop, unless already beating there."""
        loop = asyncio.get_running_loop()
        if loop is self.loop and self._next is not None:
            return
        self.stop()
        self.loop, self.last = loop, 0.0
        self._beat()

    def stop(self) -> None:
        if self._next is not None:
            self._next.cancel()
            self._next = None

    def _beat(self) -> None:
        assert self.loop is not None
        moment = self.loop.time()
        if self.last:
            self.lateness = max(0.0, moment - self.last - self.every_s)
            if self.metrics is not None:
                self.metrics.observe_loop_lag(self.lateness)
        self.last = moment
        self._next = None if self.loop.is_closed() else self.loop.call_later(self.every_s, self._beat)


class _GcPauses:
    """A ``gc.callbacks`` entry timing each collection. Collections never
    overlap (the interpreter runs one at a time), so one start time will do."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self.started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.started = time.perf_counter()
        else:
            self.metrics.observe_gc_pause(info["generation"], time.perf_counter() - self.started)


@contextlib.asynccontextmanager
async def watching(metrics: Metrics, heartbeat: LoopHeartbeat) -> AsyncIterator[None]:
    """The heartbeat beating, and the collector's pauses recorded into ``metrics``, while inside."""
    pauses = _GcPauses(metrics)
    gc.callbacks.append(pauses)
    heartbeat.start()
    try:
        yield
    finally:
        heartbeat.stop()
        gc.callbacks.remove(pauses)
