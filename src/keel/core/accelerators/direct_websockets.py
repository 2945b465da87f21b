"""Accelerator: WebSocket routes dispatched straight from the middleware stack.

What it replaces: Starlette's routing of a WebSocket connection — the
exception middleware, the router, the route and its exception wrapper —
for the exact paths domains register here (``/api/v1/ws``). A WebSocket's
ASGI call lasts as long as the connection, so every layer it passes through
stays in memory, as coroutines and closures, for each live session: about
3 KiB of the ~38 KiB a session held, ten thousand times over. Nothing of
those layers applies to these endpoints (they take no dependencies, and
handle their own errors by close codes). The A/B that keeps it:
docs/performance.md ("Accelerators").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

WebSocketEndpoint = Callable[[WebSocket], Awaitable[None]]


class DirectWebSockets:
    """The innermost of keel's middleware: a WebSocket whose path is
    registered in ``endpoints`` goes to its endpoint; everything else on."""

    def __init__(self, app: ASGIApp, *, endpoints: dict[str, WebSocketEndpoint]) -> None:
        self.app = app
        self.endpoints = endpoints  # filled in by the domains as they install

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            endpoint = self.endpoints.get(scope["path"])
            if endpoint is not None:
                await endpoint(WebSocket(scope, receive, send))
                return
        await self.app(scope, receive, send)
