"""keel's load benchmark: every scenario against a baseline measured in the same run.

    python -m bench.run [--backends sqlite,postgres] [--seconds 8] [--quick]      (make bench)

For each backend (the embedded default, SQLite; and PostgreSQL + Redis) it
creates and seeds its own database with `keel seed`, starts each server under
test as its own process on 127.0.0.1, drives it with wrk for a bounded time,
stops everything it started (and drops the PostgreSQL database it created),
and writes docs/benchmarks.md. Only ratios within one run are comparable:
these machines are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx

from bench.load import LoadResult, MixedUser, run_wrk, wrk_available
from bench.report import Check, Row, cpu_ms_per_request, write_report
from bench.servers import Server, uvicorn, wait_until_idle
from keel.serving import EVENT_LOOP

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_DSN = os.environ.get("BENCH_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
MIXED_ORGS, MIXED_USERS_PER_ORG = 10, 10
# Full-text scenarios: an org of this many tasks, every one of which matches
# SEARCH_WORD (each seeded description reads "<verb> the <noun> for <noun>.").
SEARCH_TASKS, SEARCH_WORD = 100_000, "the"
UNLIMITED = "100000000/minute"  # rate limiting runs (on Redis) but never refuses


@dataclass
class Measured:
    result: LoadResult
    rss_mb: float
    cpu_s: float
    rounds_rps: tuple[float, ...] = ()  # each round's req/s, when measured in rounds


@dataclass
class Plan:
    rounds: int
    seconds: int
    connections: int
    write_connections: int
    overload_connections: int
    overload_seconds: int
    deep_tasks: dict[str, int]


@dataclass
class Seeded:
    org_id: str
    email: str
    password: str
    mixed_accounts: list[tuple[str, str, str]] = field(default_factory=list)  # (org_id, email, password)
    search_account: tuple[str, str, str] = ("", "", "")  # (org_id, email, password) of a SEARCH_TASKS org


def measure(server: Server, path: str = "/", **load: object) -> Measured:
    wait_until_idle(Server.running)
    cpu_before = server.cpu_seconds()
    result = run_wrk(server.port, path, **load)  # type: ignore[arg-type]
    return Measured(result, server.rss_mb(), server.cpu_seconds() - cpu_before)


def measure_under(
    server: Server, busy: list[tuple[int, str]], path: str, *, token: str, seconds: int, connections: int
) -> Measured:
    """``path`` measured while each of ``busy`` is loaded by one client of its
    own (started a second before, stopped a second after)."""
    wait_until_idle(Server.running)
    with ThreadPoolExecutor(len(busy)) as pool:
        loads = [
            pool.submit(run_wrk, port, busy_path, token=token, connections=1, seconds=seconds + 2)
            for port, busy_path in busy
        ]
        time.sleep(1)
        cpu_before = server.cpu_seconds()
        result = run_wrk(server.port, path, token=token, connections=connections, seconds=seconds)
        cpu = server.cpu_seconds() - cpu_before
        for running in loads:
            running.result()
    return Measured(result, server.rss_mb(), cpu)


def keel_env(database_url: str, secret: str, *, redis: bool, redis_url: str = REDIS_URL) -> dict[str, str]:
    env = {
        "KEEL_ENV": "test",
        "KEEL_SECRET_KEY": secret,
        "KEEL_DATABASE_URL": database_url,
        "KEEL_LOG_FORMAT": "json",
        "KEEL_LOG_LEVEL": "INFO",
        # Logins are set-up, not measured: cheap hashing keeps 100 of them quick.
        "KEEL_ARGON2_TIME_COST": "1",
        "KEEL_ARGON2_MEMORY_KIB": "1024",
        "KEEL_ARGON2_PARALLELISM": "1",
        "KEEL_DB_POOL_SIZE": "15",
        "KEEL_DB_MAX_OVERFLOW": "0",
    }
    if redis:
        env |= {
            "KEEL_REDIS_URL": redis_url,
            "KEEL_REDIS_KEY_PREFIX": f"keel-bench-{secrets.token_hex(4)}",
            "KEEL_RATE_LIMIT_DEFAULT": UNLIMITED,
            "KEEL_RATE_LIMIT_AUTH": UNLIMITED,
            "KEEL_RATE_LIMIT_LOGIN_ACCOUNT": UNLIMITED,
        }
    else:
        env["KEEL_RATE_LIMITS"] = "off"
    return env


def keel(*args: str, env: dict[str, str], cwd: Path) -> str:
    completed = subprocess.run(
        [sys.executable, "-m", "keel.cli", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"keel {args[0]} failed ({completed.returncode}): {completed.stderr[-2000:]}")
    return completed.stdout


def seed(env: dict[str, str], cwd: Path, *, tasks: int, mixed: bool, search: bool = True) -> Seeded:
    """An org of ``tasks`` tasks; with ``search`` also an org of SEARCH_TASKS
    (unless that one is it), with ``mixed`` the mixed scenario's orgs."""
    keel("migrate", env=env, cwd=cwd)

    def one(task_count: int, members: int) -> tuple[str, list[tuple[str, str]]]:
        out = keel("seed", "--tasks", str(task_count), "--members", str(members), env=env, cwd=cwd)
        org_id = re.search(r"seeded org (\S+)", out).group(1)  # type: ignore[union-attr]
        return org_id, re.findall(r"^\s+(\S+@example\.com)\s+(\S+)$", out, re.M)

    org_id, accounts = one(tasks, 5)
    seeded = Seeded(org_id, *accounts[0])
    if tasks == SEARCH_TASKS:
        seeded.search_account = (org_id, *accounts[0])
    elif search:
        search_org, search_accounts = one(SEARCH_TASKS, 2)
        seeded.search_account = (search_org, *search_accounts[0])
    if mixed:
        for _ in range(MIXED_ORGS):
            mixed_org, mixed_accounts = one(200, MIXED_USERS_PER_ORG)
            seeded.mixed_accounts += [(mixed_org, email, password) for email, password in mixed_accounts]
    return seeded


def login(base: str, email: str, password: str) -> str:
    response = httpx.post(f"{base}/api/v1/auth/login", json={"email": email, "password": password}, timeout=30)
    response.raise_for_status()
    return str(response.json()["access_token"])


def page_cursor(base: str, token: str, tasks_path: str, page: int) -> str:
    """The cursor of page ``page`` (1-based), found by following next_cursor."""
    headers = {"authorization": f"Bearer {token}"}
    cursor = ""
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        for _ in range(page - 1):
            params: dict[str, str | int] = {"limit": 50, **({"cursor": cursor} if cursor else {})}
            cursor = client.get(tasks_path, params=params).raise_for_status().json()["next_cursor"]
    return cursor


@contextmanager
def postgres_database() -> Iterator[str]:
    """A database of the run's own on the local PostgreSQL, dropped afterwards."""
    name = f"keel_bench_{secrets.token_hex(4)}"

    async def admin(sql: str) -> None:
        connection = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def settle_postgres(keel_url: str) -> None:
    """VACUUM ANALYZE after the bulk load, so autovacuum does not wake up
    mid-measurement; then a CHECKPOINT, so the load's writes reach the disk
    now rather than during the first scenarios (the checkpointer spreads
    them over minutes, and the host's writeback competes for its two cores)."""

    async def vacuum() -> None:
        connection = await asyncpg.connect(keel_url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            await connection.execute("VACUUM ANALYZE")
            await connection.execute("CHECKPOINT")
        finally:
            await connection.close()

    asyncio.run(vacuum())


def combined(parts: list[Measured]) -> Measured:
    """Several rounds as one: totals over all rounds, the worst round's percentiles."""
    results = [part.result for part in parts]
    worst = max(results, key=lambda r: r.p99_ms)
    return Measured(
        LoadResult(
            requests=sum(r.requests for r in results),
            seconds=sum(r.seconds for r in results),
            socket_errors=sum(r.socket_errors for r in results),
            shed=sum(r.shed for r in results),
            rate_limited=sum(r.rate_limited for r in results),
            server_errors=sum(r.server_errors for r in results),
            client_errors=sum(r.client_errors for r in results),
            p50_ms=max(r.p50_ms for r in results),
            p90_ms=max(r.p90_ms for r in results),
            p99_ms=worst.p99_ms,
        ),
        max(part.rss_mb for part in parts),
        sum(part.cpu_s for part in parts),
        tuple(r.rps for r in results),
    )


def alternate(plan: Plan, *sides: tuple[Server, dict[str, object]]) -> list[Measured]:
    """Measure each side in turn, ``plan.rounds`` times: the machine's slow and
    fast spells then fall on every side alike, which keeps ratios honest.
    Every other round runs the sides in reverse order (A B C, C B A, ...):
    a drift within a round, and whatever favours a side for its place in
    the order, then falls on each side alike too."""
    parts: list[list[Measured]] = [[] for _ in sides]
    for round_number in range(plan.rounds):
        order = list(enumerate(sides))
        if round_number % 2:
            order.reverse()
        for index, (server, load) in order:
            parts[index].append(measure(server, seconds=plan.seconds, **load))  # type: ignore[arg-type]
    return [combined(side) for side in parts]


def run_backend(backend: str, plan: Plan, workdir: Path) -> tuple[list[Row], dict[str, Measured]]:
    workdir = workdir / backend
    workdir.mkdir()
    secret = secrets.token_urlsafe(48)
    with _database(backend, workdir) as (database_url, driver_env, driver_app), ExitStack() as servers:
        env = keel_env(database_url, secret, redis=backend == "postgres")
        started = time.monotonic()
        seeded = seed(env, workdir, tasks=plan.deep_tasks[backend], mixed=True)
        if backend == "postgres":
            settle_postgres(database_url)
        print(f"bench: {backend} seeded in {time.monotonic() - started:.0f} s", file=sys.stderr)

        def start(name: str, command: list[str], server_env: dict[str, str], ready: str) -> Server:
            return servers.enter_context(Server(name, command, server_env, workdir, ready))

        with_path = {"PYTHONPATH": str(ROOT)}
        keel = start(f"keel-{backend}", [sys.executable, "-m", "keel.cli", "serve"], env, "/health/live")
        bare_env = {**env, **with_path, "KEEL_RATE_LIMITS": "off"}
        # The same event loop as `keel serve`, so only the middleware differs.
        bare_command = uvicorn("bench.keel_bare:app", factory=True, loop=EVENT_LOOP)
        bare = start(f"keel-bare-{backend}", bare_command, bare_env, "/health/live")
        a2 = start(f"a2-{backend}", uvicorn("bench.baselines.bare_fastapi:app"), with_path, "/health/live")
        driver_env = {**with_path, "BENCH_SECRET": secret, **driver_env}
        driver = start(f"b-{backend}", uvicorn(driver_app), driver_env, "/docs")

        tasks_path = f"/api/v1/orgs/{seeded.org_id}/tasks"
        token = login(keel.base_url, seeded.email, seeded.password)
        auth = {"authorization": f"Bearer {token}"}
        first_page = httpx.get(f"{keel.base_url}{tasks_path}?limit=50", headers=auth, timeout=30).json()
        task_path = f"{tasks_path}/{first_page['items'][0]['id']}"
        mixed_users = []
        for org_id, email, password in seeded.mixed_accounts:
            user_token = login(keel.base_url, email, password)
            listed = httpx.get(
                f"{keel.base_url}/api/v1/orgs/{org_id}/tasks?limit=1",
                headers={"authorization": f"Bearer {user_token}"},
                timeout=30,
            ).json()
            mixed_users.append(MixedUser(user_token, org_id, listed["items"][0]["id"]))
        deep_cursor = page_cursor(keel.base_url, token, tasks_path, 1000)

        c, wc = plan.connections, plan.write_connections
        health: dict[str, object] = {"path": "/health/live", "connections": c}
        get: dict[str, object] = {"path": task_path, "token": token, "connections": c}
        first: dict[str, object] = {"path": f"{tasks_path}?limit=50", "token": token, "connections": c}
        page: dict[str, object] = {**first, "follow_cursors": True}
        deep: dict[str, object] = {**first, "path": f"{tasks_path}?limit=50&cursor={deep_cursor}"}
        create: dict[str, object] = {"path": tasks_path, "token": token, "method": "POST", "connections": wc}
        runs: dict[str, Measured] = {}
        runs["health"], runs["a2"] = alternate(plan, (keel, health), (a2, health))
        runs["task_get"], runs["b get"] = alternate(plan, (keel, get), (driver, get))
        runs["task_list"], runs["b list"], runs["task_list, middleware off"] = alternate(
            plan, (keel, page), (driver, page), (bare, page)
        )
        runs["deep_page 1"], runs["deep_page 1000"] = alternate(plan, (keel, first), (keel, deep))
        runs["task_create"], runs["b insert"] = alternate(plan, (keel, create), (driver, create))
        runs["mixed"] = measure(keel, mixed=mixed_users, connections=c, seconds=plan.seconds * plan.rounds)
        overload = {**page, "connections": plan.overload_connections}
        runs["overload"] = measure(keel, seconds=plan.overload_seconds, **overload)  # type: ignore[arg-type]
        # Recovery: the same load as task_list, straight after the overload stops.
        runs["after overload"] = measure(keel, seconds=plan.seconds * plan.rounds, **page)  # type: ignore[arg-type]
        # Goodput under 4x overload, against the same list at 64 connections.
        runs["overload 64"] = measure(keel, seconds=plan.overload_seconds, **{**page, "connections": 64})  # type: ignore[arg-type]

        # Full text over an org where every task matches: top-k, ranked in the index.
        search_org, search_email, search_password = seeded.search_account
        search_token = login(keel.base_url, search_email, search_password)
        search_tasks = f"/api/v1/orgs/{search_org}/tasks"
        search_task = httpx.get(
            f"{keel.base_url}{search_tasks}?limit=1", headers={"authorization": f"Bearer {search_token}"}, timeout=30
        ).json()["items"][0]["id"]
        searching = {"token": search_token, "connections": 1, "seconds": plan.seconds * plan.rounds}
        runs["search"] = measure(keel, f"/api/v1/orgs/{search_org}/search?q={SEARCH_WORD}&limit=20", **searching)
        runs["task_list q"] = measure(keel, f"{search_tasks}?q={SEARCH_WORD}&limit=50", **searching)
        # Probes while two clients search and load dashboards on that org.
        busy = [
            (keel.port, f"/api/v1/orgs/{search_org}/search?q={SEARCH_WORD}&limit=20"),
            (keel.port, f"/api/v1/orgs/{search_org}/dashboard"),
        ]
        probe_seconds = plan.seconds * plan.rounds
        for name, probed in (("health", "/health/live"), ("task_get", f"{search_tasks}/{search_task}")):
            runs[f"{name} under search"] = measure_under(
                keel, busy, probed, token=search_token, seconds=probe_seconds, connections=4
            )
    return _rows(backend, runs, plan), runs


def framework_baselines(plan: Plan, workdir: Path) -> list[Row]:
    """The server's and the framework's ceilings, side by side."""
    with_path = {"PYTHONPATH": str(ROOT)}
    with (
        Server("a", uvicorn("bench.baselines.raw_asgi:app"), with_path, workdir, "/health/live") as raw,
        Server("a2", uvicorn("bench.baselines.bare_fastapi:app"), with_path, workdir, "/health/live") as bare,
    ):
        load: dict[str, object] = {"path": "/health/live", "connections": plan.connections}
        raw_run, bare_run = alternate(plan, (raw, load), (bare, load))
    return [_row("a raw ASGI", raw_run, "baseline"), _row("a2 bare FastAPI", bare_run, "baseline")]


@contextmanager
def _database(backend: str, workdir: Path) -> Iterator[tuple[str, dict[str, str], str]]:
    """(keel's database URL, the driver baseline's environment, its app)."""
    if backend == "sqlite":
        database = workdir / "keel.db"
        yield f"sqlite:///{database}", {"BENCH_DB": str(database)}, "bench.baselines.driver_sqlite:app"
        return
    with postgres_database() as dsn:
        keel_url = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        yield keel_url, {"BENCH_DSN": dsn}, "bench.baselines.driver_postgres:app"


def _row(
    name: str,
    m: Measured,
    against: str = "",
    ratio: float | None = None,
    target: float | None = None,
    checks: list[Check] | None = None,
) -> Row:
    return Row(name, against, m.result, m.rss_mb, m.cpu_s, ratio, target, checks or [], m.rounds_rps)


def successes_per_s(result: LoadResult) -> float:
    """2xx answers a second: what the clients got served, refusals left out."""
    refused = result.shed + result.rate_limited + result.server_errors + result.client_errors
    return (result.requests - refused) / result.seconds if result.seconds else 0.0


def _ratio(keel_run: Measured, baseline: Measured) -> float:
    return keel_run.result.rps / baseline.result.rps if baseline.result.rps else 0.0


def _rows(backend: str, runs: dict[str, Measured], plan: Plan) -> list[Row]:
    pg = backend == "postgres"
    b_get, b_list, b_insert = runs["b get"], runs["b list"], runs["b insert"]
    label = "PostgreSQL + Redis" if pg else "SQLite"

    def no_failures(m: Measured) -> Check:
        r = m.result
        return Check("no errors", r.errors == 0, f"{r.errors:,} errors")

    def p99_within(m: Measured, limit_ms: float, baseline: Measured | None = None) -> Check:
        p99 = m.result.p99_ms
        shortfall = f"{p99:.1f} ms, over by {p99 - limit_ms:.1f}"
        if baseline is not None:
            shortfall += f"; the raw driver baseline's own p99 in this run: {baseline.result.p99_ms:.1f} ms"
        return Check(f"p99 ≤ {limit_ms:g} ms", p99 <= limit_ms, shortfall)

    def cpu_within(m: Measured, limit_ms: float) -> Check:
        cpu = cpu_ms_per_request(m.cpu_s, m.result)
        return Check(f"CPU < {limit_ms:g} ms/request", cpu < limit_ms, f"{cpu:.2f} ms")

    rows = [
        _row(f"b get ({label})", b_get, "baseline"),
        _row(f"b list ({label})", b_list, "baseline"),
        _row(f"b insert ({label})", b_insert, "baseline"),
        _row("a2 bare FastAPI", runs["a2"], "baseline"),
        _row("keel health", runs["health"], "a2 bare FastAPI", _ratio(runs["health"], runs["a2"]), 0.70),
    ]
    for scenario, baseline, name in (("task_get", b_get, "b get"), ("task_list", b_list, "b list")):
        checks = [no_failures(runs[scenario])] + ([p99_within(runs[scenario], 25, baseline)] if pg else [])
        if scenario == "task_get":  # an authenticated request, whole: server, auth, SQL, JSON
            checks.append(cpu_within(runs[scenario], 1.0))
        rows.append(_row(f"keel {scenario}", runs[scenario], name, _ratio(runs[scenario], baseline), 0.50, checks))
    rows.append(
        _row(
            "keel task_create",
            runs["task_create"],
            "b insert",
            _ratio(runs["task_create"], b_insert),
            0.40,
            [no_failures(runs["task_create"])],
        )
    )
    mixed = runs["mixed"].result
    rows.append(
        _row(
            "keel mixed",
            runs["mixed"],
            checks=[
                Check("no 5xx", mixed.server_errors + mixed.shed == 0, f"{mixed.server_errors + mixed.shed:,}"),
                Check("no 429", mixed.rate_limited == 0, f"{mixed.rate_limited:,}"),
                Check("no socket errors", mixed.socket_errors == 0, f"{mixed.socket_errors:,}"),
                p99_within(runs["mixed"], 50),
            ],
        )
    )
    rows.append(_row("keel deep_page 1", runs["deep_page 1"]))
    rows.append(
        _row(
            f"keel deep_page 1000 ({plan.deep_tasks[backend]:,} tasks)",
            runs["deep_page 1000"],
            "deep_page 1",
            _ratio(runs["deep_page 1000"], runs["deep_page 1"]),
            0.80,
        )
    )
    overload = runs["overload"].result
    after = runs["after overload"].result
    rows.append(
        _row(
            f"keel overload ({plan.overload_connections} conns, {plan.overload_seconds} s)",
            runs["overload"],
            checks=[
                Check("no 5xx but 503", overload.server_errors == 0, f"{overload.server_errors:,} 5xx"),
                Check("no socket errors", overload.socket_errors == 0, f"{overload.socket_errors:,}"),
                Check(f"{overload.shed:,} shed with 503", True),
            ],
        )
    )
    rows.append(
        _row(
            "keel task_list after overload",
            runs["after overload"],
            "task_list",
            _ratio(runs["after overload"], runs["task_list"]),
            None,
            [Check("p50 within 2x of before", after.p50_ms <= 2 * runs["task_list"].result.p50_ms)],
        )
    )
    served = runs["overload"].result
    served_64 = runs["overload 64"].result
    rows.append(_row("keel task_list at 64 conns", runs["overload 64"]))
    rows.append(
        _row(
            f"keel goodput at {plan.overload_connections} conns",
            runs["overload"],
            "64 conns",
            successes_per_s(served) / successes_per_s(served_64) if successes_per_s(served_64) else 0.0,
            0.80,
            [Check("no socket errors", served.socket_errors == 0, f"{served.socket_errors:,}")],
        )
    )
    for name in ("search", "task_list q"):
        what = f"keel {name} ({SEARCH_TASKS:,} matching tasks, 1 conn)"
        rows.append(_row(what, runs[name], checks=[no_failures(runs[name]), p99_within(runs[name], 100)]))
    for name in ("health under search", "task_get under search"):
        checks = [no_failures(runs[name]), p99_within(runs[name], 50)]
        rows.append(_row(f"keel {name} (2 clients searching, dashboards)", runs[name], checks=checks))
    rows.append(_row("keel task_list, middleware off", runs["task_list, middleware off"]))
    rows.append(
        _row(
            "keel task_list, middleware on",
            runs["task_list"],
            "middleware off",
            _ratio(runs["task_list"], runs["task_list, middleware off"]),
            0.85,
        )
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="sqlite,postgres", help="comma-separated: sqlite, postgres")
    parser.add_argument("--seconds", type=int, default=5, help="load duration of each round (3 rounds)")
    parser.add_argument("--quick", action="store_true", help="short runs and less data: checks the harness only")
    parser.add_argument("--report", type=Path, default=ROOT / "docs" / "benchmarks.md")
    args = parser.parse_args()
    if not wrk_available():
        return 2
    plan = Plan(
        rounds=2 if args.quick else 3,
        seconds=2 if args.quick else args.seconds,
        connections=16,
        write_connections=64,
        overload_connections=256,
        overload_seconds=5 if args.quick else 30,
        deep_tasks={"sqlite": 60_000, "postgres": 60_000} if args.quick else {"sqlite": 100_000, "postgres": 1_000_000},
    )
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    workdir = ROOT / "bench" / "results" / time.strftime("%Y%m%d-%H%M%S")
    workdir.mkdir(parents=True)

    framework = framework_baselines(plan, workdir)
    sections = {backend: run_backend(backend, plan, workdir)[0] for backend in backends}
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"
    command = "make bench  (python -m bench.run " + " ".join(sys.argv[1:]) + ")"
    write_report(args.report, framework, sections, machine=machine, command=command, plan=plan)
    print(args.report.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
