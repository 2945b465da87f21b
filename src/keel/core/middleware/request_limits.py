"""Request limits, enforced before a handler pays for the request, and its deadline.

Headers over the limit get 431; a body over the limit gets 413, judged by
Content-Length up front and by counting the stream (chunked bodies have no
Content-Length); a body on a write must be JSON or it gets 415. The body is
read whole before the handler runs, within ``client_timeout_s`` (408 and the
connection closed past it): a client that sends its body slowly holds only
its own connection, never one of the ``max_in_flight`` places that handlers
run in. A handler that runs too long is cancelled and answered 504 (its
transaction rolls back).
Under overload (see ``load_shedding``) a request is refused at once with 503
and Retry-After: fast refusals keep the accepted requests fast instead of
every request queueing for a pool until it times out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keel.core.errors import (
    GatewayTimeout,
    HeadersTooLarge,
    KeelError,
    PayloadTooLarge,
    RequestTimeout,
    ServiceUnavailable,
    UnsupportedMediaType,
    send_problem,
)
from keel.core.logging import get_logger
from keel.core.middleware.load_shedding import LoadShedder
from keel.core.routing import route_template

_METHODS_WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_log = get_logger("keel.timeout")


def _overloaded() -> ServiceUnavailable:
    return ServiceUnavailable("keel is at capacity; retry shortly.", headers={"Retry-After": "1"})


class _BodyTooLarge(Exception):
    """The body grew past the limit while it was read."""


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _declares_body(scope: Scope) -> bool:
    content_length = _header(scope, b"content-length")
    return (content_length is not None and content_length != b"0") or _header(scope, b"transfer-encoding") is not None


def _is_json(content_type: bytes) -> bool:
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json" or media_type.endswith(b"+json")


class RequestLimits:
    """The limits' rules; the request-context layer applies them (one layer
    rather than two: a layer's coroutine frame and ``send`` wrapper cost
    about as much as these checks)."""

    def __init__(
        self,
        *,
        max_body_bytes: int,
        max_header_bytes: int,
        timeout_s: float,
        client_timeout_s: float,
        shedder: LoadShedder,
    ) -> None:
        self.shedder = shedder
        self.max_body_bytes = max_body_bytes
        self.max_header_bytes = max_header_bytes
        self.timeout_s = timeout_s
        self.client_timeout_s = client_timeout_s

    def rejection(self, scope: Scope) -> KeelError | None:
        """Why the request is refused before it runs (431, 413, 415, 503), or None."""
        header_bytes = sum(len(name) + len(value) for name, value in scope["headers"])
        if header_bytes > self.max_header_bytes:
            return HeadersTooLarge(f"Request headers exceed {self.max_header_bytes} bytes.")
        if scope["method"] in _METHODS_WITH_BODY:
            content_length = _header(scope, b"content-length")
            has_body = _declares_body(scope)
            if content_length is not None and content_length.isdigit() and int(content_length) > self.max_body_bytes:
                return PayloadTooLarge(f"The request body exceeds {self.max_body_bytes} bytes.")
            if has_body and not _is_json(_header(scope, b"content-type") or b""):
                return UnsupportedMediaType("Send the request body as application/json.")
        if self.shedder.should_shed(scope):
            return _overloaded()
        return None

    async def _read_body(self, receive: Receive) -> Message | None:
        """The whole body as one message, or None if the client went away."""
        chunks: list[bytes] = []
        received = 0
        async with asyncio.timeout(self.client_timeout_s):
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return None
                chunk = message.get("body", b"")
                received += len(chunk)
                if received > self.max_body_bytes:
                    raise _BodyTooLarge
                chunks.append(chunk)
                if not message.get("more_body", False):
                    return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

    async def run(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send, response_started: Callable[[], bool]
    ) -> None:
        """Read the body, then run the request within its deadline (504 past it)."""
        if _declares_body(scope):
            try:
                body = await self._read_body(receive)
            except _BodyTooLarge:
                # The rest of the body is never read: the connection cannot carry another request.
                too_large = PayloadTooLarge(
                    f"The request body exceeds {self.max_body_bytes} bytes.", headers={"Connection": "close"}
                )
                await send_problem(send, too_large, scope)
                return
            except TimeoutError:
                slow = RequestTimeout(
                    f"The request body did not arrive within {self.client_timeout_s:g} s.",
                    headers={"Connection": "close"},
                )
                await send_problem(send, slow, scope)
                return
            if body is None:
                return  # disconnected: nobody to answer
            receive = _replaying(body, receive)

        counted = not self.shedder.exempt(scope)  # probes answer whatever the load
        if counted and not await self.shedder.take_place():
            await send_problem(send, _overloaded(), scope)
            return
        deadline = asyncio.timeout(self.timeout_s)
        try:
            async with deadline:
                await app(scope, receive, send)
        except TimeoutError:
            if not deadline.expired() or response_started():
                raise  # not this deadline's, or too late to answer
            _log.warning("http.timeout", route=route_template(scope), timeout_s=self.timeout_s)
            late = GatewayTimeout(f"The request did not complete within {self.timeout_s:g} s.")
            await send_problem(send, late, scope)
        finally:
            if counted:
                self.shedder.leave_place()


def _replaying(body: Message, receive: Receive) -> Receive:
    """``receive`` for the application: the body read already, then the connection's own messages."""
    pending: Message | None = body

    async def replay() -> Message:
        nonlocal pending
        if pending is not None:
            message, pending = pending, None
            return message
        return await receive()

    return replay
