"""Group commit: many small writes, each awaited by its caller, written
together.

A write that arrives while another is being written waits for the next one,
which takes everything that has arrived meanwhile. Idle, each item is
written at once on its own; busy, one transaction carries many, so the cost
of a transaction (statements, round trips, the commit's flush) is shared.
With ``every_s``, busy writes also start at most that often: a steady flow
then makes batches of what arrives in that time, rather than of what
arrived during the last write (which, the quicker writes are, makes more
and smaller batches, each paying a transaction's cost).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from math import inf
from typing import Generic, TypeVar

Item = TypeVar("Item")


class GroupCommit(Generic[Item]):
    def __init__(
        self, write: Callable[[list[Item]], Awaitable[None]], *, max_batch: int = 500, every_s: float = 0.0
    ) -> None:
        """``write`` writes a batch in one transaction, or raises: every
        item of the batch then fails with its exception."""
        self.write = write
        self.max_batch = max_batch
        self.every_s = every_s
        self._last_start = -inf
        self._waiting: list[tuple[Item, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> None:
        """Return once ``item`` is written (raise if its batch failed)."""
        await self.add(item)

    def add(self, item: Item) -> asyncio.Future[None]:
        """Queue ``item``; the future is done once it is written (or its batch
        failed). Items added one after another are written in that order,
        so a caller need not wait for one before adding the next."""
        written = asyncio.get_running_loop().create_future()
        self._waiting.append((item, written))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_all(), name="keel-group-commit")
        return written

    async def _write_all(self) -> None:
        batch: list[tuple[Item, asyncio.Future[None]]] = []
        try:
            while self._waiting:
                loop = asyncio.get_running_loop()
                if (pause := self._last_start + self.every_s - loop.time()) > 0:
                    await asyncio.sleep(pause)
                self._last_start = loop.time()
                batch, self._waiting = self._waiting[: self.max_batch], self._waiting[self.max_batch :]
                try:
                    await self.write([item for item, _ in batch])
                except Exception as exc:  # each caller hears of it; the next batch is tried all the same
                    _settle(batch, exc)
                else:
                    _settle(batch, None)
        finally:  # cancelled (the loop is closing): nobody is left waiting forever
            for _, written in [*batch, *self._waiting]:
                written.cancel()
            self._waiting = []


def _settle(batch: list[tuple[Item, asyncio.Future[None]]], error: Exception | None) -> None:
    for _, written in batch:
        if written.done():  # its caller was cancelled
            continue
        if error is None:
            written.set_result(None)
        else:
            written.set_exception(error)
