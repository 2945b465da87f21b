"""Request deadlines, enforced by one periodic sweep instead of a timer per request.

``asyncio.timeout`` schedules and cancels a timer handle for every request
(~10 µs, a good part of a trivial request's cost). Here a request only
registers its task and deadline in an insertion-ordered dict; with one
timeout for all requests the dict is also in deadline order, so a sweep
every ``timeout_s / 20`` (10 ms to 0.5 s) looks only at the expired head.
A request is cancelled at most one sweep interval after its deadline.
"""

from __future__ import annotations

import asyncio

_MIN_SWEEP_S = 0.01
_MAX_SWEEP_S = 0.5


class RequestDeadlines:
    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.sweep_interval_s = min(max(timeout_s / 20, _MIN_SWEEP_S), _MAX_SWEEP_S)
        self._deadlines: dict[asyncio.Task[object], float] = {}
        self._expired: set[asyncio.Task[object]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> asyncio.Task[object]:
        """Register the running request; call ``finish`` with the task it returns."""
        task = asyncio.current_task()
        assert task is not None, "a request runs in a task"
        loop = task.get_loop()
        if loop is not self._loop:  # first request on this loop: start sweeping it
            self._loop = loop
            self._deadlines.clear()
            self._expired.clear()
            loop.call_later(self.sweep_interval_s, self._sweep, loop)
        self._deadlines[task] = loop.time() + self.timeout_s
        return task

    def finish(self, task: asyncio.Task[object]) -> bool:
        """Unregister the request; True if its deadline passed and it was cancelled.

        The caller that gets True owns the cancellation: it calls
        ``task.uncancel()`` once it has handled it.
        """
        self._deadlines.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    def _sweep(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._loop or loop.is_closed():
            return
        now = loop.time()
        expired = []
        for task, deadline in self._deadlines.items():
            if deadline > now:
                break  # the rest started later
            expired.append(task)
        for task in expired:
            del self._deadlines[task]
            self._expired.add(task)
            task.cancel()
        loop.call_later(self.sweep_interval_s, self._sweep, loop)
