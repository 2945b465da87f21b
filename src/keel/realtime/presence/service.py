"""Who is online: a ``user_id → live sessions`` index in the cache (a hash
per user, a field per session: its device and times, nothing more, as it is
held for every live session), so an org's presence reads its members'
entries and never scans sessions.

Each process writes its sessions' entries when they open, drops them when
they close, and writes them all again every third of
``KEEL_REALTIME_PRESENCE_TTL_S``: an entry carries its own expiry, so the
sessions of a process that crashed drop out within the TTL. With Redis
configured but away, writes are skipped and reads answer from this
process's own sessions, marked ``degraded``."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson

from keel.core.cache import Cache
from keel.core.logging import get_logger
from keel.realtime.connection import Connection

_log = get_logger("keel.realtime")
# Sessions written per slice of a heartbeat.
_BEAT_SLICE = 200


@dataclass(frozen=True, slots=True)
class LiveSession:
    session_id: str
    device_id: uuid.UUID | None  # None: a browser's session
    connected_at: float  # Unix seconds


def _key(user_id: uuid.UUID) -> str:
    return f"realtime.presence.{user_id.hex}"


class Presence:
    def __init__(self, cache: Cache, ttl_s: float) -> None:
        self.cache = cache
        self.ttl_s = ttl_s
        self.local: dict[str, Connection] = {}
        self._beating: asyncio.Task[None] | None = None
        self._lost = False

    def start(self) -> None:
        self._beating = asyncio.get_running_loop().create_task(self._beat(), name="keel-realtime-presence")

    async def stop(self) -> None:
        if self._beating is not None:
            self._beating.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beating

    async def entered(self, connection: Connection) -> None:
        self.local[connection.session_id] = connection
        await self._write([connection])

    async def left(self, connection: Connection) -> None:
        self.local.pop(connection.session_id, None)
        try:
            await self.cache.drop_field(_key(connection.user_id), connection.session_id)
        except Exception as exc:  # the entry expires by itself
            self._note_lost(exc)

    async def of_users(self, user_ids: Sequence[uuid.UUID]) -> tuple[dict[uuid.UUID, list[LiveSession]], bool]:
        """Each online user's live sessions, and whether only this process's are known."""
        try:
            entries = await self.cache.fields_of([_key(user_id) for user_id in user_ids])
        except Exception as exc:
            self._note_lost(exc)
            wanted = set(user_ids)
            local: dict[uuid.UUID, list[LiveSession]] = {}
            for connection in self.local.values():
                if connection.user_id in wanted:
                    local.setdefault(connection.user_id, []).append(_session_of(connection))
            return local, True
        moment = time.time()
        online: dict[uuid.UUID, list[LiveSession]] = {}
        for user_id, fields in zip(user_ids, entries, strict=True):
            sessions = [s for s in (_parse(session_id, v, moment) for session_id, v in fields.items()) if s]
            if sessions:
                online[user_id] = sorted(sessions, key=lambda s: s.connected_at)
        return online, False

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_s / 3)
            # In slices, the event loop free between them: ten thousand
            # entries written in one go held up every request for their time.
            sessions = list(self.local.values())
            for start in range(0, len(sessions), _BEAT_SLICE):
                if not await self._write(sessions[start : start + _BEAT_SLICE]):
                    break  # the cache is away: the next beat writes them all again
                await asyncio.sleep(0)

    async def _write(self, connections: Iterable[Connection]) -> bool:
        expires_at = time.time() + self.ttl_s
        entries = [(_key(c.user_id), c.session_id, _entry(c, expires_at)) for c in connections]
        try:
            await self.cache.put_fields(entries, ttl_s=self.ttl_s)
        except Exception as exc:  # local presence goes on
            self._note_lost(exc)
            return False
        if self._lost:
            self._lost = False
            _log.info("realtime.presence_recovered")
        return True

    def _note_lost(self, exc: Exception) -> None:
        if not self._lost:
            self._lost = True
            _log.warning("realtime.presence_degraded", error=type(exc).__name__)


def _session_of(connection: Connection) -> LiveSession:
    return LiveSession(connection.session_id, connection.device_id, connection.connected_at)


def _entry(connection: Connection, expires_at: float) -> bytes:
    return orjson.dumps(
        {
            "device_id": connection.device_id.hex if connection.device_id else None,
            "connected_at": connection.connected_at,
            "expires_at": expires_at,
        }
    )


def _parse(session_id: str, value: bytes, moment: float) -> LiveSession | None:
    try:
        data = orjson.loads(value)
        if data["expires_at"] <= moment:  # its process stopped writing it: gone
            return None
        device = data["device_id"]
        return LiveSession(session_id, uuid.UUID(hex=device) if device else None, float(data["connected_at"]))
    except (ValueError, KeyError, TypeError):
        return None
