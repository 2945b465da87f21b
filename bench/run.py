"""keel's load benchmark: every scenario against a baseline measured in the same run.

    python -m bench.run [--seconds 8] [--tasks 20000]      (make bench)

Seeds an embedded-default (SQLite) database with `keel seed`, starts each
server under test as its own process on 127.0.0.1, drives it with wrk for a
bounded time, stops everything, and writes docs/benchmarks.md. Only ratios
within one run are comparable: these machines are noisy.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.load import LoadResult, run_wrk, wrk_available
from bench.report import Row, write_report
from bench.servers import Server, uvicorn

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Measured:
    result: LoadResult
    rss_mb: float
    cpu_s: float


def measure(
    server: Server, path: str, *, token: str = "", method: str = "GET", connections: int, seconds: int
) -> Measured:
    cpu_before = server.cpu_seconds()
    result = run_wrk(server.port, path, method=method, token=token, connections=connections, seconds=seconds)
    return Measured(result, server.rss_mb(), server.cpu_seconds() - cpu_before)


def keel_env(database: Path, secret: str) -> dict[str, str]:
    return {
        "KEEL_ENV": "test",
        "KEEL_SECRET_KEY": secret,
        "KEEL_DATABASE_URL": f"sqlite:///{database}",
        "KEEL_RATE_LIMITS": "off",
        "KEEL_LOG_FORMAT": "json",
        "KEEL_LOG_LEVEL": "INFO",
    }


def keel(*args: str, env: dict[str, str], cwd: Path) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "keel.cli", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return completed.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=8, help="load duration per measurement")
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks to seed")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--write-connections", type=int, default=64)
    parser.add_argument("--report", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    if not wrk_available():
        print("bench: wrk is missing (Debian package 'wrk'); `make bench` installs it", file=sys.stderr)
        return 2

    workdir = ROOT / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S")
    workdir.mkdir(parents=True)
    database, secret = workdir / "keel.db", secrets.token_urlsafe(48)
    env = keel_env(database, secret)
    keel("migrate", env=env, cwd=workdir)
    seeded = keel("seed", "--tasks", str(args.tasks), env=env, cwd=workdir)
    org_id = re.search(r"seeded org (\S+)", seeded).group(1)  # type: ignore[union-attr]
    email, password = re.search(r"^\s+(\S+@example\.com)\s+(\S+)$", seeded, re.M).groups()  # type: ignore[union-attr]

    rows: list[Row] = []
    c, wc, s = args.connections, args.write_connections, args.seconds
    tasks_path = f"/api/v1/orgs/{org_id}/tasks"

    server = Server("keel", [sys.executable, "-m", "keel.cli", "serve"], env, workdir, "/health/live")
    try:
        base = f"http://127.0.0.1:{server.port}"
        token = httpx.post(f"{base}/api/v1/auth/login", json={"email": email, "password": password}).json()[
            "access_token"
        ]
        listed = httpx.get(f"{base}{tasks_path}?limit=50", headers={"authorization": f"Bearer {token}"}).json()
        task_path = f"{tasks_path}/{listed['items'][0]['id']}"
        keel_runs = {
            "health": measure(server, "/health/live", connections=c, seconds=s),
            "task_get": measure(server, task_path, token=token, connections=c, seconds=s),
            "task_list": measure(server, f"{tasks_path}?limit=50", token=token, connections=c, seconds=s),
            "task_create": measure(server, tasks_path, token=token, method="POST", connections=wc, seconds=s),
        }
    finally:
        server.stop()

    baselines: dict[str, Measured] = {}
    for name, app in (
        ("a raw ASGI", "bench.baselines.raw_asgi:app"),
        ("a2 bare FastAPI", "bench.baselines.bare_fastapi:app"),
    ):
        baseline = Server(name.split()[0], uvicorn(app), {"PYTHONPATH": str(ROOT)}, workdir, "/health/live")
        try:
            baselines[name] = measure(baseline, "/health/live", connections=c, seconds=s)
        finally:
            baseline.stop()
    driver_env = {"PYTHONPATH": str(ROOT), "BENCH_DB": str(database), "BENCH_SECRET": secret}
    driver = Server("b", uvicorn("bench.baselines.driver_sqlite:app"), driver_env, workdir, "/docs")
    try:
        baselines["b get"] = measure(driver, task_path, token=token, connections=c, seconds=s)
        baselines["b list"] = measure(driver, f"{tasks_path}?limit=50", token=token, connections=c, seconds=s)
        baselines["b insert"] = measure(driver, tasks_path, token=token, method="POST", connections=wc, seconds=s)
    finally:
        driver.stop()

    for name, measured in baselines.items():
        rows.append(Row(name, "baseline", measured.result, measured.rss_mb, measured.cpu_s, None, None))
    pairs = {"health": "a2 bare FastAPI", "task_get": "b get", "task_list": "b list", "task_create": "b insert"}
    targets = {"health": 0.70, "task_get": 0.50, "task_list": 0.50, "task_create": 0.40}
    for scenario, measured in keel_runs.items():
        baseline = baselines[pairs[scenario]].result
        ratio = measured.result.rps / baseline.rps if baseline.rps else 0.0
        rows.append(
            Row(
                f"keel {scenario}",
                pairs[scenario],
                measured.result,
                measured.rss_mb,
                measured.cpu_s,
                ratio,
                targets[scenario],
            )
        )
    cores = os.cpu_count()
    machine = f"{platform.machine()}, {cores} cores, Python {platform.python_version()}, {platform.platform()}"
    command = "make bench  (python -m bench.run " + " ".join(sys.argv[1:]) + ")"
    write_report(
        args.report,
        rows,
        machine=machine,
        command=command,
        tasks=args.tasks,
        connections=c,
        write_connections=wc,
        seconds=s,
    )
    print(args.report.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
