"""Where a loaded keel server spends its time: py-spy on `keel serve` under wrk.

    python -m bench.spy [--scenario task_list] [--seconds 8] [--database-url URL]

Seeds an embedded database (or uses --database-url, already migrated and
seeded by `keel seed`, with the --org-id, --email and --password it printed), starts
`keel serve` on 127.0.0.1, drives one scenario with wrk while py-spy samples
the server, and prints the share of samples in keel's main building blocks
(inclusive: a sample counts for every block on its stack, SQLAlchemy's
greenlet stacks included) and the functions with the most samples of their own.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from bench.load import run_wrk
from bench.run import keel_env, seed
from bench.servers import free_port

# Building blocks, found by a pattern of their frames.
BLOCKS = {
    "request context layer (id, headers, log, metrics)": r"RequestContextMiddleware\.__call__",
    "dependencies (auth, scope, session, params)": r"solve_dependencies",
    "  authentication": r"\b_?authenticated? \(",
    "  rate limiting": r"enforce_rate_limit \(",
    "route handler": r"run_endpoint_function",
    "SQL through SQLAlchemy": r"Connection\.execute \(",
    "response validation and rendering": r"serialize_response \(",
    "commit / rollback": r"_finish \(",
}
_PATTERNS = {block: re.compile(pattern) for block, pattern in BLOCKS.items()}


def _frame(frame: str) -> str:
    return re.sub(r" \(.*?/(site-packages|src|lib/python3\.\d+)/", " (", frame)


def summarize(raw: Path) -> str:
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        samples = int(count)
        total += samples
        for block, pattern in _PATTERNS.items():
            if pattern.search(stack):
                inclusive[block] += samples
        own[_frame(stack.split(";")[-1])] += samples
    lines = [f"{total} samples", "", "| building block | share of samples |", "| --- | ---: |"]
    lines += [f"| {block} | {inclusive[block] / total:.0%} |" for block in BLOCKS]
    lines += ["", "| own time, top functions | share |", "| --- | ---: |"]
    lines += [f"| `{name[:110]}` | {count / total:.1%} |" for name, count in own.most_common(12)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="task_list", choices=["health", "task_get", "task_list", "task_create"])
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--database-url", help="an already seeded database; needs --org-id, --email, --password")
    parser.add_argument("--org-id")
    parser.add_argument("--email")
    parser.add_argument("--password")
    parser.add_argument("--redis-url", help="run keel with Redis (rate limits on Redis)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="keel-spy-"))
    database_url = args.database_url or f"sqlite:///{workdir / 'keel.db'}"
    redis = args.redis_url is not None
    env = keel_env(database_url, secrets.token_urlsafe(48), redis=redis, redis_url=args.redis_url or "")
    if args.database_url:
        org_id, email, password = args.org_id, args.email, args.password
    else:
        seeded = seed(env, workdir, tasks=20_000, mixed=False)
        org_id, email, password = seeded.org_id, seeded.email, seeded.password
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "keel.cli", "serve"],
        env={**os.environ, **env, "KEEL_PORT": str(port)},
        stdout=(workdir / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                httpx.get(f"{base}/health/live", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        login = httpx.post(f"{base}/api/v1/auth/login", json={"email": email, "password": password}, timeout=30)
        token = login.json()["access_token"]
        tasks = f"/api/v1/orgs/{org_id}/tasks"
        page = httpx.get(f"{base}{tasks}?limit=50", headers={"authorization": f"Bearer {token}"}, timeout=30)
        first = orjson.loads(page.content)["items"][0]["id"]
        load = {
            "health": {"path": "/health/live"},
            "task_get": {"path": f"{tasks}/{first}", "token": token},
            "task_list": {"path": f"{tasks}?limit=50", "token": token},
            "task_create": {"path": tasks, "token": token, "method": "POST"},
        }[args.scenario]
        raw = workdir / "profile.raw"
        spy = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "py-spy"),
                "record",
                "-p",
                str(server.pid),
                "-d",
                str(args.seconds),
                "-r",
                "250",
                "-f",
                "raw",
                "-o",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        result = run_wrk(port, connections=args.connections, seconds=args.seconds + 1, **load)
        spy.wait(timeout=60)
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(f"{args.scenario}: {result.rps:,.0f} req/s, p50 {result.p50_ms:.1f} ms (while sampled)\n")
    print(summarize(raw))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
