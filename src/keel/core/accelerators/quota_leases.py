"""Accelerator: a window's rate-limit budget drawn from the shared counter in leases.

What it spares: a round trip to Redis for every request. A process takes
several units of a window's budget at once (one increment of the shared
counter by the lease's size) and admits requests from them locally until
they are used. The counter grants at most what is left of the budget, so
all processes together never admit more than the limit.

A unit leased by a process that then sees no more of its caller's requests
goes unused until the window ends, so leases stay small: a window's first
lease is one unit, and each lease used up within the window doubles the
next, up to ``max_lease`` and to a sixteenth of what was left of the
budget; a budget of 31 or less is therefore counted one request at a time,
exactly. A request that finds this process's units used while a lease is
being fetched waits for that lease when it has a unit to spare, and
otherwise counts one unit of its own. A budget known to be spent is refused
without asking the counter again until its window ends. Measured effect,
and the A/B that keeps it: docs/performance.md ("Accelerators").
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Protocol

MAX_LEASE = 64
# A lease is at most this fraction of what is left of the budget.
_LEASE_SHARE = 16


class Counters(Protocol):
    """Fixed-window counters: a `limits` storage."""

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int: ...

    async def get_expiry(self, key: str) -> float: ...


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    remaining: int  # of the window's budget, as far as this process knows
    window_end: float  # epoch seconds


@dataclass(slots=True)
class _Lease:
    """A lease being fetched, and the requests waiting for its spare units."""

    amount: int
    answered: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    waiting: int = 0
    error: Exception | None = None


@dataclass(slots=True)
class _Window:
    end: float = 0.0  # epoch seconds; 0 until the first lease's answer
    spent: int = 0  # the shared counter after this process's latest lease
    unused: int = 0  # units leased to this process, not used yet
    next_lease: int = 1
    fetching: _Lease | None = None

    def remaining(self, limit: int) -> int:
        return max(0, limit - self.spent) + self.unused


class QuotaLeases:
    """Admits requests against fixed-window budgets kept in ``counters``."""

    def __init__(self, counters: Counters, *, max_lease: int = MAX_LEASE, max_windows: int = 100_000) -> None:
        self._counters = counters
        self._max_lease = max_lease
        self._max_windows = max_windows
        self._windows: dict[str, _Window] = {}

    async def admit(self, key: str, limit: int, expiry: int) -> Admission:
        """Admit one request under ``key``'s budget of ``limit`` per ``expiry`` seconds."""
        while True:
            now = time.time()
            window = self._windows.get(key)
            if window is None or 0 < window.end <= now:
                window = self._open(key)
            if window.unused > 0:
                window.unused -= 1
                return Admission(True, window.remaining(limit), window.end)
            if window.spent >= limit:
                return Admission(False, 0, window.end)
            fetching = window.fetching
            if fetching is None or fetching.waiting >= fetching.amount - 1:
                return await self._lease(key, window, limit, expiry, now)
            # A spare unit of the lease being fetched is this request's,
            # unless a request that arrives meanwhile takes it first.
            fetching.waiting += 1
            try:
                await asyncio.shield(fetching.answered)
            finally:
                fetching.waiting -= 1
            if fetching.error is not None:
                raise fetching.error

    def forget(self) -> None:
        """Drop every window's state (the counters may have lost theirs)."""
        self._windows.clear()

    def _open(self, key: str) -> _Window:
        if key not in self._windows and len(self._windows) >= self._max_windows:
            self._windows.clear()  # each is re-learnt with one lease
        window = self._windows[key] = _Window()
        return window

    async def _lease(self, key: str, window: _Window, limit: int, expiry: int, now: float) -> Admission:
        fetching = None
        amount = 1
        if window.fetching is None:
            amount = max(1, min(window.next_lease, self._max_lease, (limit - window.spent) // _LEASE_SHARE))
            fetching = window.fetching = _Lease(amount)
        try:
            total = await self._counters.incr(key, expiry, amount)
        except Exception as exc:
            if fetching is not None:
                fetching.error = exc
            raise
        finally:
            if fetching is not None:
                window.fetching = None
                fetching.answered.set_result(None)
        window.spent = max(window.spent, total)
        window.unused += max(0, min(amount, limit - (total - amount)))
        if fetching is not None:
            window.next_lease = amount * 2
        # This request's unit is taken before any other await, so the
        # requests that run meanwhile cannot use it. What is left is judged
        # by this lease's own total: leases answered out of order must not
        # report the budget left after a later one.
        allowed = window.unused > 0
        window.unused -= allowed
        remaining = max(0, limit - total) + window.unused
        if not window.end:
            # The increment that creates the counter starts its window.
            window.end = now + expiry if total == amount else await self._counters.get_expiry(key)
        return Admission(allowed, remaining, window.end)
