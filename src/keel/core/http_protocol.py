"""uvicorn's httptools protocol with a deadline for a request's headers.

uvicorn closes a keep-alive connection that stays idle between requests, but
not one that connects and sends nothing, nor one that sends half a request
line or half its headers: each holds a socket and a parser open for as long
as the client likes. Here a request's headers must be complete within the
server's ``timeout_keep_alive`` seconds (keel sets it to
``KEEL_CLIENT_TIMEOUT_S``) of the connection opening or of the chunk that
started them without completing them, or the connection is closed. The body
has its own deadline, in ``middleware.request_limits``.

It is passed to uvicorn as its ``http`` protocol class (a public option) and
overrides only the protocol's public callbacks.
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HeaderDeadlineProtocol(HttpToolsProtocol):
    header_deadline: asyncio.TimerHandle | None = None
    # Between a request's first byte and the end of its headers.
    awaiting_headers = False

    def start_header_deadline(self) -> None:
        self.stop_header_deadline()
        self.header_deadline = self.loop.call_later(self.timeout_keep_alive, self.headers_overdue)

    def stop_header_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def headers_overdue(self) -> None:
        self.header_deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.start_header_deadline()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # Headers usually arrive whole, in the chunk that starts them: the
        # deadline is set only for headers a chunk leaves incomplete, and
        # runs from then until they are complete.
        if self.awaiting_headers and self.header_deadline is None:
            self.start_header_deadline()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.awaiting_headers = True

    def on_headers_complete(self) -> None:
        self.awaiting_headers = False
        self.stop_header_deadline()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.stop_header_deadline()
        super().connection_lost(exc)
