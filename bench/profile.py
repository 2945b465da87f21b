"""Per-request cost of keel's scenarios, in process, with an optional profile.

    python -m bench.profile [--scenario task_get] [--requests 2000] [--pyinstrument out.html] [--middleware-off]

Builds keel's ASGI app on a freshly seeded embedded database (or the
database named by KEEL_DATABASE_URL, already migrated and seeded) and calls
it directly, with no server or network: what is left is keel's own cost per
request. Use it to find where time goes; `make bench` is what measures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from bench.keel_bare import without_middleware
from bench.run import keel_env, seed

REPORT = sys.stdout
# Requests run before a scenario is measured (caches, pools, compiled
# statements). The same number whatever --requests says: bench.instructions
# subtracts a short series from a long one, and only the measured requests
# may differ between them.
WARM_UP_REQUESTS = 200
Asgi = Callable[
    [dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]],
    Awaitable[None],
]


async def call(app: Asgi, method: str, path: str, *, token: str = "", body: bytes = b"") -> tuple[int, bytes]:
    raw_path, _, query = path.partition("?")
    headers = [(b"host", b"127.0.0.1"), (b"user-agent", b"bench")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def measure(args: argparse.Namespace) -> dict[Path, str]:
    """Time each scenario; return the profiles taken, by output path."""
    profiles: dict[Path, str] = {}
    from asgi_lifespan import LifespanManager

    from keel.main import create_app, tune_collector_for_serving

    app = create_app()
    tune_collector_for_serving()  # as `keel serve` does
    if args.middleware_off:
        app = without_middleware(app)
    async with LifespanManager(app) as manager:
        asgi: Asgi = manager.app  # type: ignore[assignment]
        status, body = await call(
            asgi, "POST", "/api/v1/auth/login", body=orjson.dumps({"email": args.email, "password": args.password})
        )
        token = orjson.loads(body)["access_token"]
        tasks = f"/api/v1/orgs/{args.org_id}/tasks"
        status, body = await call(asgi, "GET", f"{tasks}?limit=50", token=token)
        first = orjson.loads(body)["items"][0]["id"]
        counter = iter(range(10**9))
        scenarios: dict[str, Callable[[], Awaitable[tuple[int, bytes]]]] = {
            "health": lambda: call(asgi, "GET", "/health/live"),
            "task_get": lambda: call(asgi, "GET", f"{tasks}/{first}", token=token),
            "task_list": lambda: call(asgi, "GET", f"{tasks}?limit=50", token=token),
            "task_create": lambda: call(
                asgi, "POST", tasks, token=token, body=orjson.dumps({"title": f"profiled {next(counter)}"})
            ),
        }
        names = [args.scenario] if args.scenario != "all" else list(scenarios)
        for name in names:
            run = scenarios[name]
            for _ in range(WARM_UP_REQUESTS):
                await run()
            profiler = None
            if args.pyinstrument:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0002, async_mode="enabled")
                profiler.start()
            started, cpu_started = time.perf_counter(), time.process_time()
            statuses: dict[int, int] = {}
            for _ in range(args.requests):
                status, _ = await run()
                statuses[status] = statuses.get(status, 0) + 1
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
            if profiler is not None:
                profiler.stop()
                out = Path(args.pyinstrument.replace("{scenario}", name))
                html = out.suffix == ".html"
                profiles[out] = profiler.output_html() if html else profiler.output_text(unicode=True, show_all=True)
            per_request_ms, cpu_ms = elapsed / args.requests * 1000, cpu / args.requests * 1000
            print(f"{name:12} {per_request_ms:7.3f} ms/request ({cpu_ms:.3f} CPU)  statuses {statuses}", file=REPORT)
    return profiles


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="all", choices=["all", "health", "task_get", "task_list", "task_create"])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--pyinstrument", help="write a profile here ({scenario} is replaced); .html or .txt")
    parser.add_argument("--middleware-off", action="store_true", help="the app without its middleware")
    parser.add_argument("--org-id", help="an org seeded by `keel seed` in KEEL_DATABASE_URL (skips seeding)")
    parser.add_argument("--email", help="with --org-id: a member's email, as `keel seed` printed it")
    parser.add_argument("--password", help="with --org-id: that member's password")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="keel-profile-"))
    env = {
        **keel_env(f"sqlite:///{workdir / 'keel.db'}", secrets.token_urlsafe(48), redis=False),
        # Requests run back to back in one task here, never yielding to the
        # loop: the loop-stall detector would shed them.
        "KEEL_MAX_LOOP_STALL_MS": "600000",
        **{key: value for key, value in os.environ.items() if key.startswith("KEEL_")},
    }
    if not args.org_id:
        seeded = seed(env, workdir, tasks=20_000, mixed=False)
        args.org_id, args.email, args.password = seeded.org_id, seeded.email, seeded.password
    os.environ.update(env)
    # The access log is part of the cost; keep writing it, to a file.
    global REPORT
    REPORT = os.fdopen(os.dup(1), "w", buffering=1)
    log = open(workdir / "access.log", "w")  # noqa: SIM115
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    for out, profile in asyncio.run(measure(args)).items():
        out.write_text(profile)
        print(f"profile written to {out}", file=REPORT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
