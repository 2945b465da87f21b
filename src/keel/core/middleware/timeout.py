"""Request timeout: a handler that runs too long is cancelled and answered 504."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from keel.core.errors import GatewayTimeout, send_problem
from keel.core.logging import get_logger
from keel.core.middleware.tracked_send import TrackedSend
from keel.core.routing import route_template

_log = get_logger("keel.timeout")


class TimeoutMiddleware:
    def __init__(self, app: ASGIApp, *, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tracked = TrackedSend(send)

        deadline = asyncio.timeout(self.timeout_s)
        try:
            async with deadline:
                await self.app(scope, receive, tracked)
        except TimeoutError:
            if not deadline.expired() or tracked.response_started:
                raise
            _log.warning("http.timeout", route=route_template(scope), timeout_s=self.timeout_s)
            error = GatewayTimeout(f"The request did not complete within {self.timeout_s:g} s.")
            await send_problem(send, error, scope)
