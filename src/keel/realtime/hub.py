"""This process's live connections, and events relayed to them from here and
from every other process.

An event stored here goes to the user's connections on this process at once
and, through the cache's pub/sub, to every process holding a connection of
theirs (each process joins the channel ``realtime.user.<id>`` while it holds
one, and leaves it with the last). Revocations travel on
``realtime.control``: every process closes the sockets named."""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Sequence

import orjson

from keel.core.cache import Cache, Channels
from keel.core.logging import get_logger
from keel.realtime.connection import REVOKED, Connection

CONTROL = "realtime.control"
_USER_PREFIX = "realtime.user."
_log = get_logger("keel.realtime")


def user_channel(user_id: uuid.UUID) -> str:
    return f"{_USER_PREFIX}{user_id.hex}"


class Hub:
    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self.process = uuid.uuid4().hex  # tells this process's own messages apart when they come back
        self.by_user: dict[uuid.UUID, set[Connection]] = {}
        self.channels: Channels | None = None
        self._outgoing: deque[tuple[str, bytes]] = deque()
        self._publisher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.channels = self.cache.channels(self._heard, self._gap)
        await self.channels.join(CONTROL)

    async def stop(self) -> None:
        if self.channels is not None:
            await self.channels.close()
            self.channels = None

    @property
    def connections(self) -> Iterable[Connection]:
        for connections in self.by_user.values():
            yield from connections

    def count_of(self, user_id: uuid.UUID) -> int:
        return len(self.by_user.get(user_id, ()))

    async def add(self, connection: Connection) -> None:
        """Hold ``connection``; once this returns, events stored anywhere reach it."""
        theirs = self.by_user.setdefault(connection.user_id, set())
        theirs.add(connection)
        if len(theirs) == 1 and self.channels is not None:
            await self.channels.join(user_channel(connection.user_id))

    async def remove(self, connection: Connection) -> None:
        theirs = self.by_user.get(connection.user_id)
        if theirs is None or connection not in theirs:
            return
        theirs.discard(connection)
        if not theirs:
            del self.by_user[connection.user_id]
            if self.channels is not None:
                await self.channels.leave(user_channel(connection.user_id))

    # -- relaying -------------------------------------------------------
    def relay(self, user_id: uuid.UUID, seq: int, frame: str) -> None:
        """An event committed to ``user_id``'s stream: to their connections here and elsewhere."""
        self._offer(user_id, seq, frame)
        self._publish(user_channel(user_id), b"%s %d %s" % (self.process.encode(), seq, frame.encode()))

    def disconnect_devices(self, device_ids: Sequence[uuid.UUID], *, keep_session: str | None = None) -> None:
        """Close these devices' connections, on every process (after a
        revocation commits), except the session ``keep_session`` (the one
        that rotated the device's key)."""
        self._close_devices({d.hex for d in device_ids}, keep_session)
        message = {"devices": [d.hex for d in device_ids], "keep_session": keep_session}
        self._publish(CONTROL, orjson.dumps(message))

    def disconnect_user(self, user_id: uuid.UUID) -> None:
        """Close all of a user's connections, on every process (their account is gone)."""
        self._close(lambda c: c.user_id == user_id, "account deleted")
        self._publish(CONTROL, orjson.dumps({"user": user_id.hex}))

    def _offer(self, user_id: uuid.UUID, seq: int, frame: str) -> None:
        for connection in self.by_user.get(user_id, ()):
            connection.offer(seq, frame)

    def _publish(self, channel: str, data: bytes) -> None:
        # One task publishes, in order, everything queued meanwhile in one
        # round trip: a user's events reach other processes in seq order (a
        # task per message raced on the pool's connections, and every event
        # that overtook another sent its receivers to the database).
        self._outgoing.append((channel, data))
        if self._publisher is None:
            self._publisher = asyncio.get_running_loop().create_task(self._send(), name="keel-realtime-publish")

    async def _send(self) -> None:
        try:
            while self._outgoing:
                batch = list(self._outgoing)
                self._outgoing.clear()
                try:
                    await self.cache.publish_many(batch)
                except Exception as exc:  # other processes' sessions find the events by their seq later
                    _log.debug("realtime.publish_failed", error=type(exc).__name__, messages=len(batch))
        finally:
            self._publisher = None

    def _heard(self, channel: str, data: bytes) -> None:
        try:
            if channel == CONTROL:
                self._control(orjson.loads(data))
                return
            process, seq, frame = data.split(b" ", 2)
            if process.decode() == self.process:
                return
            self._offer(uuid.UUID(hex=channel.removeprefix(_USER_PREFIX)), int(seq), frame.decode())
        except (ValueError, TypeError) as exc:
            _log.warning("realtime.bad_message", channel=channel, error=type(exc).__name__)

    def _control(self, message: dict[str, object]) -> None:
        devices = message.get("devices")
        if isinstance(devices, list):
            keep = message.get("keep_session")
            self._close_devices({str(d) for d in devices}, keep if isinstance(keep, str) else None)
        user = message.get("user")
        if isinstance(user, str):
            gone = uuid.UUID(hex=user)
            self._close(lambda c: c.user_id == gone, "account deleted")

    def _close_devices(self, device_hexes: set[str], keep_session: str | None) -> None:
        def named(connection: Connection) -> bool:
            return (
                connection.device_id is not None
                and connection.device_id.hex in device_hexes
                and connection.session_id != keep_session
            )

        self._close(named, "device revoked or its key rotated")

    def _close(self, which: Callable[[Connection], bool], reason: str) -> None:
        for connection in list(self.connections):
            if which(connection):
                connection.close(REVOKED, reason)

    def _gap(self) -> None:
        for connection in list(self.connections):
            connection.owe_more()
