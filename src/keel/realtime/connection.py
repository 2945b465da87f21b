"""One live session: what it has been sent, and its bounded send buffer.

Events reach a connection two ways: live (from this process, or from another
through pub/sub) and from the database. Live messages may arrive out of
order (two processes publish) or not at all (pub/sub is at-most-once), so a
connection sends an event only when it is the next ``seq`` it owes; an event
further ahead means some are missing, and the connection reads them from the
database, in order, before going on. Nothing is sent twice, and nothing is
skipped without a ``resync`` frame saying so.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from keel.core.logging import get_logger
from keel.realtime import messages

_log = get_logger("keel.realtime")

# A batch of the user's stored events after a seq: rows of realtime_events.
ReadAfter = Callable[[uuid.UUID, int], Awaitable[list[dict[str, Any]]]]

# Close codes (README has the table).
AUTH_FAILED = 4401
REVOKED = 4403
TOO_SLOW = 4408
TOO_MANY = 4429
GOING_AWAY = 1001
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013


class Connection:
    # Slots: no per-instance dict, for an object held once per live session.
    __slots__ = (
        "_again",
        "_ahead",
        "_buffer",
        "_flushing",
        "_frames",
        "_reading",
        "_start",
        "_started",
        "close_code",
        "close_reason",
        "connected_at",
        "delivered",
        "device_id",
        "epoch",
        "left",
        "nonce",
        "on_close",
        "org_id",
        "own",
        "read_after",
        "session_id",
        "shutting",
        "transmit",
        "user_id",
    )

    def __init__(
        self,
        *,
        user_id: uuid.UUID,
        device_id: uuid.UUID | None,
        session_id: str,
        org_id: uuid.UUID | None,
        nonce: bytes,
        buffer: int,
        read_after: ReadAfter,
    ) -> None:
        self.user_id = user_id
        self.device_id = device_id
        self.session_id = session_id
        self.org_id = org_id  # the user's personal org, where their device events go
        self.connected_at = time.time()
        self.nonce = nonce  # the handshake's: a key rotation signs it too
        self.epoch = 1
        # Frames wait in a deque, sent by a task that lives only while there
        # are some: an idle session holds no task of its own beyond its reader
        # (its memory counts ten thousand times).
        self._frames: deque[str] = deque()
        self._buffer = buffer
        self.transmit: Callable[[str], Awaitable[None]] | None = None  # the socket's send, once open
        self._flushing: asyncio.Task[None] | None = None
        self.read_after = read_after
        self.delivered = 0  # every seq up to here has been sent, or was this session's own
        self.own: set[int] = set()  # seqs of events this session sent (acked, never echoed)
        self.close_code: int | None = None
        self.close_reason = ""
        self.on_close: Callable[[], None] | None = None  # the gateway's: sends the close frame
        self.shutting: asyncio.Task[None] | None = None
        self.left = False  # out of the hub and presence
        self._ahead = 0  # the highest seq heard of live
        self._reading: asyncio.Task[None] | None = None
        self._again = False
        self._start = 0  # counts start_at calls: a read begun before one is stale
        self._started = False

    # -- sending --------------------------------------------------------
    def send(self, frame: str) -> None:
        """Queue a frame; a client too slow to take them is disconnected."""
        if self.close_code is not None:
            return
        if len(self._frames) >= self._buffer:
            self.close(TOO_SLOW, "too slow: the send buffer is full")
            return
        self._frames.append(frame)
        if self._flushing is None and self.transmit is not None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush(self.transmit))

    async def _flush(self, transmit: Callable[[str], Awaitable[None]]) -> None:
        try:
            while self._frames:
                await transmit(self._frames.popleft())
        except Exception:  # the socket is gone: its reader hears of it and ends the session
            self._frames.clear()
        finally:
            self._flushing = None

    def open(self, transmit: Callable[[str], Awaitable[None]]) -> None:
        """The handshake is done: send what waits, and what comes, through ``transmit``."""
        self.transmit = transmit
        if self._frames and self._flushing is None:
            self._flushing = asyncio.get_running_loop().create_task(self._flush(transmit))

    def close(self, code: int, reason: str) -> None:
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
            if self.on_close is not None:
                self.on_close()

    def release(self) -> None:
        """The session is over: stop any read or send under way."""
        self.transmit = None
        for task in (self._reading, self._flushing):
            if task is not None:
                task.cancel()

    # -- events ---------------------------------------------------------
    def start_at(self, seq: int) -> None:
        """Owe every event after ``seq`` (a new session: the stream's end; a resume: the client's seq)."""
        self.delivered = seq
        self._started = True
        self._start += 1
        self._ahead = max(self._ahead, seq)
        self._read()

    def offer(self, seq: int, frame: str) -> None:
        """A live event of the user's stream."""
        if seq <= self.delivered:
            return
        self._ahead = max(self._ahead, seq)
        if not self._started:
            return  # the start reads it
        if self._reading is None and seq == self.delivered + 1:
            self._deliver(seq, frame)
        else:
            self._read()  # a gap, or a read under way: (another) read covers it

    def owe_more(self) -> None:
        """Live messages may have been lost: look in the database."""
        if self._started:
            self._read()

    def _deliver(self, seq: int, frame: str) -> None:
        self.delivered = seq
        if seq in self.own:
            self.own.discard(seq)
        else:
            self.send(frame)

    def _read(self) -> None:
        if self._reading is not None:
            self._again = True  # what it has read may predate the reason for this one
        elif self.close_code is None:
            self._reading = asyncio.get_running_loop().create_task(self._catch_up(), name="keel-realtime-catch-up")

    async def _catch_up(self) -> None:
        try:
            while self.close_code is None:
                self._again = False
                start = self._start
                rows = await self.read_after(self.user_id, self.delivered)
                if start != self._start:  # a resume moved the start while reading: read from there
                    continue
                for row in rows:
                    if row["seq"] > self.delivered + 1:  # expired before it could be sent: say so
                        self._expired_unsent()
                    self._deliver(row["seq"], _frame_of(row))
                if rows or self._again:  # more may follow, or were heard of while reading
                    continue
                if self._ahead > self.delivered:  # heard of before this read, yet gone: expired
                    self._expired_unsent()
                    self.delivered = self._ahead
                return
        except Exception as exc:  # the database is away: the next live event or gap tries again
            _log.warning("realtime.catch_up_failed", error=type(exc).__name__, session_id=self.session_id)
        finally:
            self._reading = None

    def _expired_unsent(self) -> None:
        self.send(messages.frame("resync", epoch=self.epoch, reason="expired", after_seq=self.delivered))


def _frame_of(row: dict[str, Any]) -> str:
    return messages.event_frame(
        seq=row["seq"],
        client_id=row["client_id"],
        kind=row["kind"],
        payload=row["payload"],
        device_id=row["device_id"],
        created_at=row["created_at"],
    )
