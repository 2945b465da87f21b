"""Last-resort handler: an unexpected exception becomes a generic 500 problem.

It sits inside the request-context layer so the 500 still carries the request
id and security headers; the traceback goes only to the log.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from keel.core.errors import InternalError, send_problem
from keel.core.logging import get_logger
from keel.core.middleware.tracked_send import TrackedSend
from keel.core.routing import route_template

_log = get_logger("keel.errors")


class UnhandledErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = TrackedSend(send)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            _log.exception("http.unhandled_error", method=scope["method"], route=route_template(scope))
            if tracked.response_started:
                raise  # too late for a problem body; the server closes the connection
            await send_problem(send, InternalError("An unexpected error occurred."), scope)
