"""The WebSocket gateway (``/api/v1/ws``): the handshake, then a session's
messages in and its frames out.

Handshake: the server sends a fresh 32-byte nonce; a device answers with its
Ed25519 signature of it, a browser with its access token. The nonce lives in
this connection only and is answered once, within ``KEEL_REALTIME_NONCE_TTL_S``.
Failures close with 4401 and are counted per client address and per device
in the cache: past ``KEEL_REALTIME_AUTH_FAILURES_PER_MINUTE``, 4429.

Events are stored by group commit (many sessions' events in one
transaction), acked, and relayed to the user's other sessions by the hub.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from keel.config import RealtimeSettings
from keel.core.cache import Cache
from keel.core.clock import now
from keel.core.db import Database
from keel.core.errors import retry_shortly
from keel.core.group_commit import GroupCommit
from keel.core.logging import get_logger
from keel.core.network import client_ip
from keel.core.security import InvalidToken, TokenSigner
from keel.core.token_bucket import TokenBucket
from keel.identity.orgs.service import personal_org_id
from keel.identity.users.service import active_among
from keel.realtime import messages
from keel.realtime.connection import (
    AUTH_FAILED,
    GOING_AWAY,
    INTERNAL_ERROR,
    REVOKED,
    TOO_MANY,
    TRY_AGAIN_LATER,
    Connection,
)
from keel.realtime.devices.models import Device
from keel.realtime.devices.repository import live_device, stamp_connected
from keel.realtime.events import service as events
from keel.realtime.events.repository import StreamRepository
from keel.realtime.hub import Hub
from keel.realtime.keys import SIGNATURE_BYTES, decode_base64, parse_public_key, signed_by
from keel.realtime.presence.service import Presence

_log = get_logger("keel.realtime")
_READ_BATCH = 500
_CLOSE_WAIT_S = 1.0
# Under a steady flow, events are stored at most this often, in one
# transaction: each costs a few milliseconds of CPU whatever its size,
# and batches of what arrives in this time keep that off each event.
_STORE_EVERY_S = 0.02
# A device's last connection is written at most this often.
_CONNECTED_STAMP = timedelta(minutes=1)

# Whether a user may still act (``write``: in a write transaction, stamping their activity).
ActiveUser = Callable[[AsyncSession, uuid.UUID, bool], Awaitable[bool]]


class Refused(Exception):
    """The handshake failed: close with ``code``."""

    def __init__(self, code: int, reason: str, *, counted: bool = True) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.counted = counted


class Gateway:
    def __init__(
        self,
        *,
        database: Database,
        cache: Cache,
        hub: Hub,
        presence: Presence,
        settings: RealtimeSettings,
        signer: TokenSigner,
        active_user: ActiveUser,
        heard_in: events.HeardIn,
        trusted_proxies: frozenset[str],
        activity_interval_s: float,
    ) -> None:
        self.database = database
        self.cache = cache
        self.hub = hub
        self.presence = presence
        self.settings = settings
        self.signer = signer
        self.active_user = active_user
        self.heard_in = heard_in
        self.trusted_proxies = trusted_proxies
        self.activity_interval_s = activity_interval_s
        self.storing: GroupCommit[tuple[events.Incoming, Connection]] = GroupCommit(self._store, every_s=_STORE_EVERY_S)
        self.stamping: GroupCommit[uuid.UUID] = GroupCommit(self._write_stamps)
        self._stamps: set[asyncio.Task[None]] = set()

    # -- a session ------------------------------------------------------
    async def serve(self, websocket: WebSocket) -> None:
        await websocket.accept()
        address = client_ip(websocket.scope, self.trusted_proxies)
        try:
            connection = await self._handshake(websocket, address)
        except Refused as refused:
            if refused.counted:
                await self._count_failure(address, None)
            await _close(websocket, refused.code, refused.reason)
            return
        except WebSocketDisconnect:
            return
        except Exception as error:  # the database busy or away: try again later; else a bug, logged
            await _close(websocket, *_failed(error, stage="handshake"))
            return
        if connection is None:
            return
        connection.on_close = lambda: self._closing(websocket, connection)
        connection.open(websocket.send_text)
        try:
            await self._read_frames(websocket, connection)
        except Exception as error:  # a bug: this session ends, logged; the process and other sessions go on
            connection.close(*_failed(error, stage="message", session_id=connection.session_id))
        finally:
            if connection.shutting is not None:
                await connection.shutting
            else:
                await self._leave(connection)

    def _closing(self, websocket: WebSocket, connection: Connection) -> None:
        """The session is to close (revoked, too slow, too fast, shutting down):
        it leaves the hub at once, and the close frame goes out."""
        connection.release()
        connection.shutting = asyncio.get_running_loop().create_task(self._shut(websocket, connection))

    async def _shut(self, websocket: WebSocket, connection: Connection) -> None:
        await self._leave(connection)
        assert connection.close_code is not None
        await _close(websocket, connection.close_code, connection.close_reason)

    async def _leave(self, connection: Connection) -> None:
        if connection.left:
            return
        connection.left = True
        await self.hub.remove(connection)
        await self.presence.left(connection)
        connection.release()

    async def _handshake(self, websocket: WebSocket, address: str) -> Connection | None:
        if await self._failures(f"addr:{address}") >= self.settings.realtime_auth_failures_per_minute:
            raise Refused(TOO_MANY, "too many failed handshakes: try again in a minute", counted=False)
        nonce = secrets.token_bytes(32)
        await websocket.send_text(messages.frame("challenge", nonce=base64.b64encode(nonce).decode()))
        try:
            raw = await asyncio.wait_for(websocket.receive_text(), self.settings.realtime_nonce_ttl_s)
        except TimeoutError:
            raise Refused(AUTH_FAILED, "no answer to the challenge in time") from None
        except KeyError:  # a binary frame
            raise Refused(AUTH_FAILED, "the answer must be a text frame") from None
        try:
            auth = messages.AUTH.validate_json(raw)
        except ValidationError:
            raise Refused(AUTH_FAILED, "the answer must be an auth message") from None
        user_id, device = await self._identify(auth, nonce, address)
        if await self._connections_of(user_id) >= self.settings.realtime_max_connections_per_user:
            raise Refused(TOO_MANY, "too many connections for this user", counted=False)
        connection = Connection(
            user_id=user_id,
            org_id=None,
            device_id=device.id if device else None,
            session_id=uuid.uuid4().hex,
            nonce=nonce,
            buffer=self.settings.realtime_send_buffer,
            read_after=self._read_after,
        )
        await self.hub.add(connection)  # from here, every event stored reaches it
        try:
            await self.presence.entered(connection)
            async with self.database.session(write=False) as session:
                connection.org_id = await personal_org_id(session, user_id)
                connection.epoch, last_seq = await StreamRepository(session).position(user_id)
            await websocket.send_text(
                messages.frame("ready", session_id=connection.session_id, epoch=connection.epoch, last_seq=last_seq)
            )
        except BaseException:  # gone mid-handshake (or the database is): nothing of it stays behind
            await asyncio.shield(self._leave(connection))
            raise
        connection.start_at(last_seq)
        return connection

    async def _connections_of(self, user_id: uuid.UUID) -> int:
        """The user's live sessions: on every process, or this one's if the index is away."""
        online, _ = await self.presence.of_users([user_id])
        return max(len(online.get(user_id, ())), self.hub.count_of(user_id))

    async def _identify(self, auth: messages.Auth, nonce: bytes, address: str) -> tuple[uuid.UUID, Device | None]:
        if auth.token is not None:
            try:
                user_id = uuid.UUID(str(self.signer.verify(auth.token)["sub"]))
            except (InvalidToken, ValueError, KeyError):
                raise Refused(AUTH_FAILED, "invalid or expired token") from None
            if not await self._active(user_id):
                raise Refused(AUTH_FAILED, "invalid or expired token")
            return user_id, None
        if auth.device_id is None or auth.signature is None:
            raise Refused(AUTH_FAILED, "send device_id and signature, or token")
        device_key = f"device:{auth.device_id.hex}"
        if await self._failures(device_key) >= self.settings.realtime_auth_failures_per_minute:
            raise Refused(TOO_MANY, "too many failed handshakes for this device: try again in a minute", counted=False)
        async with self.database.session(write=False) as session:
            device = await live_device(session, auth.device_id)
        signature = _signature(auth.signature)
        if device is None or signature is None or not signed_by(device.public_key, signature, nonce):
            await self._count_failure(address, device_key)
            raise Refused(AUTH_FAILED, "the signature does not verify", counted=False)
        if not await self._active(device.user_id):
            raise Refused(AUTH_FAILED, "the signature does not verify")
        self._stamp_connected(device)
        return device.user_id, device

    async def _active(self, user_id: uuid.UUID) -> bool:
        async with self.database.session(write=False) as session:
            return await self.active_user(session, user_id, False)

    def _stamp_connected(self, device: Device) -> None:
        """Note the device's connection, written with others' in one statement, after the handshake."""
        if device.last_connected_at is not None and now() - device.last_connected_at < _CONNECTED_STAMP:
            return
        task = asyncio.get_running_loop().create_task(self.stamping.submit(device.id))
        self._stamps.add(task)
        task.add_done_callback(self._stamps.discard)

    async def _write_stamps(self, device_ids: list[uuid.UUID]) -> None:
        try:
            async with self.database.session(write=True) as session, session.begin():
                await stamp_connected(session, sorted(set(device_ids)), now())
        except Exception as exc:  # best effort: a stamp never fails a handshake
            _log.debug("realtime.stamp_failed", error=type(exc).__name__)

    async def _failures(self, key: str) -> int:
        try:
            count = await self.cache.get(f"realtime.auth_failures.{key}")
        except Exception:  # the cache is away: unlimited rather than locked out
            return 0
        return int(count or 0)

    async def _count_failure(self, address: str, device_key: str | None) -> None:
        _log.info("realtime.auth_failed", client=address)
        for key in (f"addr:{address}", device_key):
            if key is not None:
                with contextlib.suppress(Exception):
                    await self.cache.incr(f"realtime.auth_failures.{key}", ttl_s=60.0)

    async def _read_frames(self, websocket: WebSocket, connection: Connection) -> None:
        bucket = TokenBucket(self.settings.realtime_messages_per_s)
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if not bucket.take():
                connection.close(TOO_MANY, "too many messages: slow down")
                return
            text = message.get("text")
            if text is None:
                connection.send(messages.error("binary_frame", "Frames must be JSON text."))
                continue
            try:
                await self._handle(connection, text)
            except Exception as error:
                if (detail := retry_shortly(error)) is None:
                    raise
                connection.send(messages.error("unavailable", detail))  # nothing was done: send it again

    async def _handle(self, connection: Connection, text: str) -> None:
        try:
            parsed = orjson.loads(text)
        except orjson.JSONDecodeError:
            connection.send(messages.error("invalid_json", "The frame is not JSON."))
            return
        try:
            message = messages.CLIENT_MESSAGES.validate_python(parsed)
        except ValidationError as invalid:
            connection.send(messages.error("invalid_message", _first_error(invalid), id=_id_of(parsed)))
            return
        if isinstance(message, messages.Event):
            await self._event(connection, message)
        elif isinstance(message, messages.Resume):
            await self._resume(connection, message)
        elif isinstance(message, messages.RotateKey):
            await self._rotate_key(connection, message)
        else:
            connection.send(messages.frame("pong"))

    # -- events ---------------------------------------------------------
    async def _event(self, connection: Connection, event: messages.Event) -> None:
        expires_at, problem = self._expiry(event)
        if problem is not None:
            connection.send(messages.error(problem[0], problem[1], id=event.id))
            return
        assert expires_at is not None
        item = events.Incoming(
            user_id=connection.user_id,
            device_id=connection.device_id,
            org_id=connection.org_id,
            client_id=event.id,
            kind=event.kind,
            payload=orjson.dumps(event.payload).decode(),
            expires_at=expires_at,
        )
        # Not awaited: the session reads its next frame while this one is
        # stored, so one device's events share batches rather than wait a
        # transaction each; they are written, and acked, in the order sent.
        stored = self.storing.add((item, connection))
        stored.add_done_callback(lambda outcome: self._stored(connection, item, outcome))

    def _stored(self, connection: Connection, item: events.Incoming, outcome: asyncio.Future[None]) -> None:
        if outcome.cancelled():
            return
        if (error := outcome.exception()) is not None:
            _log.warning("realtime.store_failed", error=type(error).__name__, session_id=connection.session_id)
            connection.send(messages.error("not_stored", "The event was not stored: send it again.", id=item.client_id))
        elif item.refused is not None:
            _log.info("realtime.event_dropped", reason=item.refused, session_id=connection.session_id)
            connection.close(REVOKED, "device revoked" if item.refused == "device_revoked" else "account deleted")
        else:
            connection.send(messages.frame("ack", id=item.client_id, seq=item.seq))

    def _expiry(self, event: messages.Event) -> tuple[datetime | None, tuple[str, str] | None]:
        """When the event expires, or why it is refused. A client's clock may
        be off by ``KEEL_REALTIME_CLOCK_SKEW_S``: its TTL counts from
        ``sent_at`` widened by as much."""
        ttl = event.ttl_s or self.settings.realtime_default_ttl_s
        if ttl > self.settings.realtime_max_ttl_s:
            return None, ("ttl_too_long", f"ttl_s may be at most {self.settings.realtime_max_ttl_s}.")
        moment = now()
        if event.sent_at is None:
            return moment + timedelta(seconds=ttl), None
        sent_at = event.sent_at if event.sent_at.tzinfo else event.sent_at.replace(tzinfo=moment.tzinfo)
        skew = timedelta(seconds=self.settings.realtime_clock_skew_s)
        if sent_at > moment + skew:
            return None, ("clock_skew", "sent_at is further ahead of the server's clock than allowed.")
        expires_at = sent_at + timedelta(seconds=ttl) + skew
        if expires_at <= moment:
            return None, ("expired", "The event's TTL ran out before it arrived.")
        return expires_at, None

    async def _store(self, batch: list[tuple[events.Incoming, Connection]]) -> None:
        items = [item for item, _ in batch]
        async with self.database.session(write=True) as session, session.begin():
            await events.store(session, items, active_users=self._active_users, heard_in=self.heard_in)
            new = [(item, sender) for item, sender in batch if item.refused is None and not item.duplicate]
            for item, sender in new:
                sender.own.add(item.seq)  # before the commit: no reader can have seen it yet
        for item, _ in new:
            frame = messages.event_frame(
                seq=item.seq,
                client_id=item.client_id,
                kind=item.kind,
                payload=item.payload,
                device_id=item.device_id,
                created_at=item.created_at,
            )
            self.hub.relay(item.user_id, item.seq, frame)

    async def _active_users(self, session: AsyncSession, user_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        return await active_among(session, user_ids, stamp_every_s=self.activity_interval_s)

    async def _read_after(self, user_id: uuid.UUID, after_seq: int) -> list[dict[str, Any]]:
        async with self.database.session(write=False) as session:
            return await StreamRepository(session).after(user_id, after_seq, at=now(), limit=_READ_BATCH)

    # -- resume and key rotation -----------------------------------------
    async def _resume(self, connection: Connection, resume: messages.Resume) -> None:
        async with self.database.session(write=False) as session:
            point = await events.resume_point(
                session, connection.user_id, after_seq=resume.after_seq, epoch=resume.epoch, at=now()
            )
        connection.epoch = point.epoch
        if point.resync is None:
            connection.start_at(resume.after_seq)
            return
        connection.send(
            messages.frame(
                "resync", epoch=point.epoch, reason=point.resync, after_seq=resume.after_seq, last_seq=point.last_seq
            )
        )
        connection.start_at(max(point.last_seq, connection.delivered))

    async def _rotate_key(self, connection: Connection, rotate: messages.RotateKey) -> None:
        if connection.device_id is None:
            connection.send(messages.error("no_device", "Only a device session has a key to rotate."))
            return
        try:
            new_key = parse_public_key(rotate.public_key)
        except ValueError as invalid:
            connection.send(messages.error("invalid_key", str(invalid)))
            return
        signature = _signature(rotate.signature)
        async with self.database.session(write=True) as session, session.begin():
            device = await live_device(session, connection.device_id)
            if device is None:
                connection.close(REVOKED, "device revoked")
                return
            if signature is None or not signed_by(device.public_key, signature, connection.nonce + new_key):
                connection.send(
                    messages.error("bad_signature", "Sign the session's nonce and the new key with the old key.")
                )
                return
            device.public_key = new_key
            device.key_rotated_at = now()
        self.hub.disconnect_devices([connection.device_id], keep_session=connection.session_id)
        connection.send(messages.frame("key_rotated", device_id=connection.device_id))

    async def stop(self) -> None:
        for connection in list(self.hub.connections):
            connection.close(GOING_AWAY, "server shutting down")


def _failed(error: Exception, *, stage: str, session_id: str | None = None) -> tuple[int, str]:
    """The close code and reason for an error that ended a session's work:
    1013 when a retry may succeed (the database busy or away); otherwise
    1011, with the error logged by keel (its statement's parameters hidden)."""
    detail = retry_shortly(error)
    if detail is not None:
        return TRY_AGAIN_LATER, detail
    _log.exception("realtime.unhandled_error", stage=stage, session_id=session_id)
    return INTERNAL_ERROR, "internal error"


def _signature(text: str) -> bytes | None:
    try:
        return decode_base64(text, length=SIGNATURE_BYTES, what="signature")
    except ValueError:
        return None


def _first_error(invalid: ValidationError) -> str:
    error = invalid.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def _id_of(parsed: object) -> str | None:
    if isinstance(parsed, dict) and isinstance(parsed.get("id"), str):
        return str(parsed["id"])[:64]
    return None


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.application_state is WebSocketState.DISCONNECTED:
        return
    # Bounded: a client that reads nothing never takes the close frame either.
    with contextlib.suppress(Exception):  # the client may be gone already
        await asyncio.wait_for(websocket.close(code, reason), _CLOSE_WAIT_S)
