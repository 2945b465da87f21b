"""How keel runs under uvicorn: ``keel serve``'s options, shared with the
tests and benchmarks that serve keel themselves (without the command line)."""

from __future__ import annotations

from typing import Any

from keel.config import Settings
from keel.core.http_protocol import HeaderDeadlineProtocol

# uvloop, accepting every pending connection per wakeup (see the module).
EVENT_LOOP = "keel.core.accelerators.eager_accept:new_event_loop"


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """How keel runs under uvicorn; shared with tests that serve extra routes."""
    return {
        "host": settings.http.host,
        "port": settings.http.port,
        "workers": settings.http.workers,
        # On SIGTERM uvicorn stops accepting, waits this long for in-flight
        # requests, then runs the lifespan shutdown (loops stopped, pools closed).
        "timeout_graceful_shutdown": max(1, round(settings.http.shutdown_grace_s)),
        "proxy_headers": False,  # keel resolves client addresses itself, from trusted proxies only
        "server_header": False,
        "access_log": False,
        "log_config": None,
        "loop": EVENT_LOOP,
        # httptools, with a deadline for each request's headers; the same
        # bound closes connections idle between requests.
        "http": HeaderDeadlineProtocol,
        "timeout_keep_alive": settings.http.client_timeout_s,
        # WebSockets: websockets' sans-I/O protocol, pinged (a silent peer is
        # closed), frames past the limit refused with 1009, no compression
        # (it costs ~60 KiB of buffers per connection).
        "ws": "websockets-sansio",
        "ws_max_size": settings.realtime.realtime_max_frame_bytes,
        "ws_ping_interval": settings.realtime.realtime_ping_interval_s,
        "ws_ping_timeout": settings.realtime.realtime_ping_interval_s,
        "ws_per_message_deflate": False,
    }
