"""Request id, access log and HTTP metrics: the outermost layer of a request.

One layer records all three, so the status and duration are measured once.
"""

from __future__ import annotations

import re
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keel.core.clock import monotonic
from keel.core.errors import REQUEST_ID_SCOPE_KEY
from keel.core.logging import bind_request_id, clear_request_context, get_logger
from keel.core.metrics import Metrics
from keel.core.network import client_ip
from keel.core.routing import route_template

REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")
_log = get_logger("keel.access")


def incoming_request_id(scope: Scope) -> str | None:
    """The client's X-Request-ID if it is short and plain; otherwise None."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            return value.decode("ascii") if _SANE_REQUEST_ID.fullmatch(value) else None
    return None


class RequestContextMiddleware:
    """Assign the request id, echo it, bind it to logs; log and count the request.

    The access log holds method, route template, status, duration and client:
    never bodies, query strings, tokens or passwords.
    """

    def __init__(self, app: ASGIApp, *, metrics: Metrics, trusted_proxies: frozenset[str] = frozenset()) -> None:
        self.app = app
        self.metrics = metrics
        self.trusted_proxies = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = incoming_request_id(scope) or uuid.uuid4().hex
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        bind_request_id(request_id)
        status = 500
        started = monotonic()
        encoded_id = request_id.encode("ascii")

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, encoded_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            if scope["type"] == "http":
                seconds = monotonic() - started
                route = route_template(scope)
                self.metrics.observe(scope["method"], route, status, seconds)
                _log.info(
                    "http.request",
                    method=scope["method"],
                    route=route,
                    status=status,
                    duration_ms=round(seconds * 1000, 2),
                    client=client_ip(scope, self.trusted_proxies),
                )
            clear_request_context()
