"""A fast webhook receiver for the webhook benchmark: answers 204 at once and
notes when each message arrived.

    python -m bench.webhook_receiver PORT

``GET /stats`` returns what arrived since the last ``POST /reset``: how many
requests and distinct (endpoint, ``webhook-id``) pairs, the first and last arrival (Unix
seconds), and each message's commit-to-arrival latency in ms — arrival less
the ``timestamp`` keel wrote in the body when the event was created, in its
transaction (so a little before the commit: the latency is, if anything,
overstated). It does not verify signatures: the tests do, and this receiver
must be cheap enough not to be the bottleneck.

Four paths misbehave, for the run that measures a healthy endpoint beside
bad ones (what arrives there is not counted; run them in a receiver of
their own, so that their cost never slows the healthy one's): ``/hang`` answers after a
minute, ``/fail`` answers 500, ``/huge`` answers 500 with a 100 MB body, and
``/redirect`` sends keel to the cloud metadata address.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from datetime import datetime

import orjson
import uvloop
from aiohttp import web


class Arrivals:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.requests = 0
        self.ids: set[tuple[str, str]] = set()  # (endpoint, webhook-id): one event goes to several
        self.first = 0.0
        self.last = 0.0
        self.latencies_ms: list[float] = []
        self.arrivals: list[float] = []  # when each of latencies_ms arrived
        self.repeated: list[str] = []  # "endpoint webhook-id" of each message that came again

    def note(self, endpoint: str, webhook_id: str, body: bytes) -> None:
        at = time.time()
        self.requests += 1
        self.first = self.first or at
        self.last = at
        if (endpoint, webhook_id) in self.ids:
            self.repeated.append(f"{endpoint} {webhook_id}")
        self.ids.add((endpoint, webhook_id))
        timestamp = orjson.loads(body).get("timestamp")
        if isinstance(timestamp, str):  # the baseline's bodies carry none
            self.latencies_ms.append((at - datetime.fromisoformat(timestamp).timestamp()) * 1000)
            self.arrivals.append(at)


def build() -> web.Application:
    arrivals = Arrivals()

    async def receive(request: web.Request) -> web.Response:
        arrivals.note(request.match_info["endpoint"], request.headers.get("webhook-id", ""), await request.read())
        return web.Response(status=204)

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": arrivals.requests,
                "distinct": len(arrivals.ids),
                "first": arrivals.first,
                "last": arrivals.last,
                "latencies_ms": arrivals.latencies_ms,
                "arrivals": arrivals.arrivals,
                "repeated": arrivals.repeated,
            },
            dumps=lambda value: orjson.dumps(value).decode(),
        )

    async def reset(_: web.Request) -> web.Response:
        arrivals.reset()
        return web.Response(status=204)

    async def live(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def hang(_: web.Request) -> web.Response:
        await asyncio.sleep(60)
        return web.Response(status=204)

    async def fail(_: web.Request) -> web.Response:
        return web.Response(status=500, text="down")

    async def huge(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=500)
        await response.prepare(request)
        chunk = b"x" * 65536
        with contextlib.suppress(ConnectionError):  # keel reads a few bytes and hangs up
            for _ in range(1600):
                await response.write(chunk)
        return response

    async def redirect(_: web.Request) -> web.Response:
        return web.Response(status=307, headers={"location": "http://169.254.169.254/latest/meta-data/"})

    app = web.Application()
    app.router.add_get("/health/live", live)
    app.router.add_get("/stats", stats)
    app.router.add_post("/reset", reset)
    for path, misbehave in (("/hang", hang), ("/fail", fail), ("/huge", huge), ("/redirect", redirect)):
        app.router.add_post(path, misbehave)
    app.router.add_post("/{endpoint}", receive)
    return app


if __name__ == "__main__":
    web.run_app(
        build(), host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None, loop=uvloop.new_event_loop()
    )
