"""Wakes workers, in this process or any other, when outbox events commit.

A process that commits events publishes one message on the cache's
``outbox.committed`` channel (Redis pub/sub across processes, in memory
within one); every worker listening looks for due events at once instead of
at its next poll. Commits within ``_WINDOW_S`` (20 ms) of each other share one
message, so a busy API publishes at most 50 times a second and a worker
woken by it finds several events to take in one pass. Pub/sub
is at-most-once: a lost message delays events by a poll interval at worst,
and never loses one (they are rows in the outbox).
"""

from __future__ import annotations

import asyncio

from sqlalchemy.orm import Session

from keel.core import outbox
from keel.core.cache import Cache
from keel.core.logging import get_logger

CHANNEL = "outbox.committed"
_WINDOW_S = 0.02
_log = get_logger("keel.worker")


class CommitAnnouncer:
    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self._scheduled = False
        self._publishing: set[asyncio.Task[None]] = set()

    def watch(self, session_class: type[Session]) -> None:
        """Announce each commit of ``session_class`` that wrote events."""
        outbox.on_commit(session_class, self.committed)

    def committed(self) -> None:
        if self._scheduled:
            return
        self._scheduled = True
        asyncio.get_running_loop().call_later(_WINDOW_S, self._publish)

    def _publish(self) -> None:
        self._scheduled = False
        task = asyncio.create_task(self._send(), name="keel-outbox-announce")
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _send(self) -> None:
        try:
            await self.cache.publish(CHANNEL, b"")
        except Exception as exc:  # the cache is away: workers find the events at their next poll
            _log.debug("worker.announce_failed", error=type(exc).__name__)
