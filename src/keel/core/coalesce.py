"""Concurrent increments of one counter, sent as one increment.

While an increment of a key is on its way to Redis, further hits on that key
gather into one batch; when the call in flight returns, the batch goes as a
single ``INCRBY n`` and each member gets the count it would have got alone
(the batch's total minus the members after it). Counts stay exact; a busy
key (one client hammering an endpoint) costs one round trip per round trip's
worth of requests instead of one per request. An uncontended key goes
straight through.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from keel.core.futures import mark_outcome_seen

Increment = Callable[[str, int, int], Awaitable[int]]  # (key, expiry_s, amount) -> new total


@dataclass(slots=True)
class _Batch:
    done: asyncio.Future[int]
    size: int = 0


@dataclass
class CoalescingCounter:
    increment: Increment
    _in_flight: dict[str, asyncio.Future[None]] = field(default_factory=dict)
    _gathering: dict[str, _Batch] = field(default_factory=dict)
    _senders: set[asyncio.Task[None]] = field(default_factory=set)

    def in_flight(self, key: str) -> bool:
        """Whether an increment of ``key`` is on its way (a new one would wait for it)."""
        return key in self._in_flight

    async def incr(self, key: str, expiry_s: int) -> int:
        """Add one to ``key`` (expiring ``expiry_s`` after its first hit); the new count."""
        batch = self._gathering.get(key)
        if batch is None:
            if key not in self._in_flight:
                return await self._send(key, expiry_s, 1)
            batch = self._gathering[key] = _Batch(asyncio.get_running_loop().create_future())
            batch.done.add_done_callback(mark_outcome_seen)  # every member may be cancelled
            sender = asyncio.create_task(self._send_batch(key, expiry_s, batch))
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        batch.size += 1
        position = batch.size
        total = await asyncio.shield(batch.done)  # a cancelled member leaves the others waiting
        return total - batch.size + position

    async def _send(self, key: str, expiry_s: int, amount: int) -> int:
        finished = self._in_flight[key] = asyncio.get_running_loop().create_future()
        try:
            return await self.increment(key, expiry_s, amount)
        finally:
            del self._in_flight[key]
            if not finished.done():  # a cancelled batch sender may have cancelled it
                finished.set_result(None)

    async def _send_batch(self, key: str, expiry_s: int, batch: _Batch) -> None:
        while (in_flight := self._in_flight.get(key)) is not None:
            await in_flight
        del self._gathering[key]  # hits from now on gather behind this call
        try:
            total = await self._send(key, expiry_s, batch.size)
        except asyncio.CancelledError:
            batch.done.cancel()
            raise
        except Exception as error:  # the members decide what a failed count means
            batch.done.set_exception(error)
        else:
            batch.done.set_result(total)
