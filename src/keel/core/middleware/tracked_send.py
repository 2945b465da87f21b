"""A ``send`` wrapper that remembers whether the response has started."""

from __future__ import annotations

from starlette.types import Message, Send


class TrackedSend:
    """Once the response has started, a middleware can no longer replace it."""

    __slots__ = ("response_started", "send")

    def __init__(self, send: Send) -> None:
        self.send = send
        self.response_started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.response_started = True
        await self.send(message)
