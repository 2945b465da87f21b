"""The layer around every request: its id, its response headers, its limits
and deadline, its last-resort error answer, and the one access-log line and
metrics sample.

One layer does all of these because each is a few microseconds of work and a
layer of its own (a coroutine frame and a ``send`` wrapper per request) costs
about as much again; the rules themselves live in their own modules.
"""

from __future__ import annotations

import re
from random import getrandbits

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keel.core.clock import monotonic
from keel.core.errors import REQUEST_ID_SCOPE_KEY, InternalError, send_problem
from keel.core.logging import bind_request_id, clear_request_context, get_logger, per_request_logger
from keel.core.metrics import Metrics
from keel.core.middleware.request_limits import RequestLimits
from keel.core.middleware.security_headers import DOCS_PATH, security_headers
from keel.core.network import client_ip
from keel.core.routing import route_template

REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")

_errors_log = get_logger("keel.errors")


def incoming_request_id(scope: Scope) -> str | None:
    """The client's X-Request-ID if it is short and plain; otherwise None."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER:
            return value.decode("ascii") if _SANE_REQUEST_ID.fullmatch(value) else None
    return None


class RequestContextMiddleware:
    """Assign the request id, echo it, bind it to logs; add the security
    headers; apply the request limits (see ``request_limits``); answer an
    unexpected exception with a generic 500 (the traceback goes only to the
    log); log and count the request.

    The access log holds method, route template, status, duration and client:
    never bodies, query strings, tokens or passwords.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        limits: RequestLimits,
        trusted_proxies: frozenset[str] = frozenset(),
        hsts_max_age_s: int = 0,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.limits = limits
        self.trusted_proxies = trusted_proxies
        self.response_headers = security_headers(hsts_max_age_s)
        self.docs_page_headers = security_headers(hsts_max_age_s, docs_page=True)
        # Built here: the app factory has configured logging by now.
        self.access_log = per_request_logger("keel.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                bind_request_id(self._request_id(scope))
            try:
                await self.app(scope, receive, send)
            finally:
                clear_request_context()
            return

        request_id = self._request_id(scope)
        bind_request_id(request_id)
        security = self.docs_page_headers if scope["path"] == DOCS_PATH else self.response_headers
        added_headers = [(REQUEST_ID_HEADER, request_id.encode("ascii")), *security]
        status = 0
        started = monotonic()

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), *added_headers]
            await send(message)

        def response_started() -> bool:
            return status != 0

        try:
            rejection = self.limits.rejection(scope)
            if rejection is None:
                await self.limits.run(self.app, scope, receive, send_with_headers, response_started)
            else:
                await send_problem(send_with_headers, rejection, scope)
        except Exception:
            _errors_log.exception("http.unhandled_error", method=scope["method"], route=route_template(scope))
            if status:
                raise  # too late for a problem body; the server closes the connection
            await send_problem(send_with_headers, InternalError("An unexpected error occurred."), scope)
        finally:
            seconds = monotonic() - started
            route = route_template(scope)
            self.metrics.observe(scope["method"], route, status or 500, seconds)
            self.access_log.info(
                "http.request",
                method=scope["method"],
                route=route,
                status=status or 500,
                duration_ms=round(seconds * 1000, 2),
                client=client_ip(scope, self.trusted_proxies),
                request_id=scope[REQUEST_ID_SCOPE_KEY],
            )
            clear_request_context()

    @staticmethod
    def _request_id(scope: Scope) -> str:
        # Ids must be unique, not secret: the process's PRNG (reseeded in each
        # forked worker) costs a fraction of a getrandom() system call.
        request_id = incoming_request_id(scope) or f"{getrandbits(128):032x}"
        scope[REQUEST_ID_SCOPE_KEY] = request_id
        return request_id
