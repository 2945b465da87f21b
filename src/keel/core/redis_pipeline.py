"""Redis commands from many tasks, pipelined on one connection.

redis-py sends each command on a connection taken from its pool and waits
for the reply, with a timeout, event hooks and pool bookkeeping around it:
about a tenth of a millisecond of CPU per call, paid by every rate-limited
request. Here every caller writes its command to one shared connection at
once and the replies come back in the order sent (Redis answers a
connection's commands in order), parsed by hiredis as they arrive; the
commands of one loop iteration leave in one write. Per call that is a few
microseconds.

Only what a shared counter needs: ``redis://``, ``rediss://`` (TLS with
certificate verification) and ``unix://`` URLs with a user, password and
database. :func:`pipeline_supports` says whether a URL is one of those;
callers use redis-py for any other.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import Any, cast
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis

from keel.core.futures import mark_outcome_seen
from keel.core.logging import get_logger

_log = get_logger("keel.redis")
_SCHEMES = frozenset({"redis", "rediss", "unix"})
_INCOMPLETE = object()  # hiredis's answer while a reply is still arriving (never a reply itself)


class RedisUnavailable(Exception):
    """Redis could not be reached, broke the connection, or did not answer in time."""


class RedisReplyError(Exception):
    """Redis answered the command with an error."""


def pipeline_supports(url: str) -> bool:
    """True for URLs this module connects to itself (no query options but ``db``)."""
    parts = urlsplit(url)
    return parts.scheme in _SCHEMES and set(parse_qs(parts.query)) <= {"db"}


def pack(*parts: bytes) -> bytes:
    """One command in the Redis protocol."""
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)


class _Connection(asyncio.Protocol):
    """One connection: its commands waiting to be written (sent together at
    the end of the loop iteration) and its callers waiting for replies, oldest
    first, each with the moment its reply is due by.

    One timer watches the oldest unanswered command, rather than a timeout
    per call (a timer armed and cancelled around every count cost more than
    the rest of the call): Redis answers a connection's commands in order, so
    when the oldest is overdue none behind it can be answered in time
    either, and the connection is dropped, failing them all."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.outgoing: list[bytes] = []
        self.parser = hiredis.Reader(replyError=RedisReplyError, notEnoughData=_INCOMPLETE)
        self.transport: asyncio.Transport | None = None
        self.lost = asyncio.get_running_loop().create_future()
        self._watchdog: asyncio.TimerHandle | None = None
        self._overdue = False

    @property
    def usable(self) -> bool:
        return self.transport is not None and not self.lost.done() and not self.transport.is_closing()

    def send(self, command: bytes) -> asyncio.Future[Any]:
        loop = self.lost.get_loop()
        reply: asyncio.Future[Any] = loop.create_future()
        if self.lost.done():  # lost since the caller picked it: nothing will fail this reply later
            reply.set_exception(RedisUnavailable("connection to Redis lost"))
            return reply
        due = loop.time() + self.timeout_s
        self.waiting.append((reply, due))
        if self._watchdog is None:
            self._watchdog = loop.call_at(due, self._check_answered)
        if not self.outgoing:
            loop.call_soon(self._flush)
        self.outgoing.append(command)
        return reply

    def _check_answered(self) -> None:
        self._watchdog = None
        if not self.waiting:
            return  # armed again by the next command
        due = self.waiting[0][1]
        loop = self.lost.get_loop()
        if loop.time() < due:  # the command it was armed for has been answered
            self._watchdog = loop.call_at(due, self._check_answered)
            return
        if self.usable:
            _log.warning("redis.pipeline_dropped", reason="no reply in time", timeout_s=self.timeout_s)
        self._overdue = True
        self.abort()

    def _flush(self) -> None:
        commands, self.outgoing = self.outgoing, []
        if self.usable:
            assert self.transport is not None
            self.transport.write(b"".join(commands))
        # Otherwise connection_lost has failed (or will fail) their callers.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        while (reply := self.parser.gets()) is not _INCOMPLETE:
            if not self.waiting:  # nothing asked for this: the stream cannot be trusted
                self.abort()
                return
            waiter, _ = self.waiting.popleft()
            if waiter.done():  # its caller gave up
                continue
            if isinstance(reply, RedisReplyError):
                waiter.set_exception(reply)
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        error = RedisUnavailable("Redis did not answer in time" if self._overdue else "connection to Redis lost")
        while self.waiting:
            waiter, _ = self.waiting.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        if not self.lost.done():
            self.lost.set_result(None)

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()  # connection_lost follows and fails every waiting caller


class RedisPipeline:
    """One lazily opened, pipelined connection; reopened after it fails."""

    def __init__(self, url: str, *, timeout_s: float) -> None:
        if not pipeline_supports(url):
            raise ValueError("unsupported Redis URL for a pipelined connection")
        self._address = urlsplit(url)  # parsed once; read when (re)connecting
        self.timeout_s = timeout_s
        self._connection: _Connection | None = None
        self._opening: asyncio.Future[_Connection] | None = None

    async def execute(self, command: bytes) -> Any:
        """Send a packed command (see :func:`pack`); its reply.

        Raises RedisReplyError for an error reply, RedisUnavailable when Redis
        cannot be reached or does not answer within the timeout (the
        connection is then dropped: the next call opens a new one).
        """
        connection = self._connection
        if connection is None or not connection.usable:
            connection = await self._connect()
        return await connection.send(command)  # failed by the connection if not answered in time

    async def _connect(self) -> _Connection:
        """The outcome of one attempt to open the connection, shared by every
        caller arriving while it runs: a Redis that does not answer costs them
        one timeout together, not one each in turn."""
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open_and_greet())
            self._opening.add_done_callback(self._attempt_over)
        return await asyncio.shield(self._opening)

    def _attempt_over(self, attempt: asyncio.Future[_Connection]) -> None:
        self._opening = None
        mark_outcome_seen(attempt)  # each caller has its copy; this one is seen even if they all left

    async def _open_and_greet(self) -> _Connection:
        connection: _Connection | None = None
        try:
            async with asyncio.timeout(self.timeout_s):
                connection = await self._open()
                await self._handshake(connection)
        except (OSError, TimeoutError, RedisReplyError, RedisUnavailable) as error:
            if connection is not None:
                connection.abort()
            raise RedisUnavailable(f"cannot connect to Redis ({type(error).__name__})") from None
        self._connection = connection
        return connection

    async def _open(self) -> _Connection:
        parts = self._address
        loop = asyncio.get_running_loop()
        timeout_s = self.timeout_s
        if parts.scheme == "unix":
            _, connection = await loop.create_unix_connection(lambda: _Connection(timeout_s), parts.path)
            return connection
        context = ssl.create_default_context() if parts.scheme == "rediss" else None
        _, connection = await loop.create_connection(
            lambda: _Connection(timeout_s), parts.hostname or "localhost", parts.port or 6379, ssl=context
        )
        return connection

    async def _handshake(self, connection: _Connection) -> None:
        parts = self._address
        replies = []
        if parts.password is not None:
            user = [unquote(parts.username).encode()] if parts.username else []
            replies.append(connection.send(pack(b"AUTH", *user, unquote(parts.password).encode())))
        path_database = parts.path.strip("/") if parts.scheme != "unix" else ""
        database = parse_qs(parts.query).get("db", [path_database])[0]
        if database not in ("", "0"):
            replies.append(connection.send(pack(b"SELECT", database.encode())))
        for reply in replies:
            await reply

    async def close(self) -> None:
        if self._opening is not None:
            self._opening.cancel()
        connection, self._connection = self._connection, None
        if connection is not None and connection.transport is not None:
            connection.transport.close()
            await connection.lost
