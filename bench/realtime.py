"""keel's realtime benchmark: idle WebSocket sessions held, device-to-device
relay latency, and what sessions and relaying cost the HTTP API, each
beside a baseline or target measured in the same run.

    python -m bench.realtime [--backends postgres,sqlite] [--quick]      (make bench-realtime)

For each backend it creates and seeds a database of its own, starts keel as
processes on 127.0.0.1 and a load generator in this process
(``bench/realtime_client.py``: devices seeded into the database, sessions
that sign their handshakes), and writes docs/benchmarks-realtime.md:

- idle sessions: SOCKETS authenticated sessions held by one ``keel serve``;
  its RSS before and with them;
- relay: RELAY_PAIRS users each with a sending and a receiving device, the
  senders together sending RELAY_RATE events/s; latency from send to arrival
  as the load generator sees it (one clock), through one process and, on
  PostgreSQL + Redis, from a device on one process to a device on another
  (the first measured after an unmeasured warm-up relay of WARM_UP_S);
- the HTTP task list (wrk) without sessions, and with SOCKETS sessions
  connected and RELAY_RATE events/s flowing, in rounds A B B A.

Beside each figure, what held the server's event loop meanwhile, read from
its /metrics (``keel_event_loop_lag_seconds``, ``keel_gc_pause_seconds``):
a p99 is decided by its slowest hundredth, and one hold of 100 ms delays
every request and event that arrives during it.
"""

from __future__ import annotations

import asyncio
import os
import platform
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from bench.load import LoadResult, run_wrk
from bench.realtime_client import Relay, SeededDevice, close_all, open_sessions, seed_devices
from bench.report import domain_bench_main
from bench.run import Seeded, _database, keel, keel_env, login, seed, settle_postgres
from bench.servers import Server, wait_until_idle
from keel.config import DatabaseSettings
from keel.core.db import Database

ROOT = Path(__file__).resolve().parent.parent
SOCKETS = 10_000
SOCKET_USERS = 100  # each with SOCKETS / SOCKET_USERS devices
RSS_TARGET_MB = 500.0
RELAY_PAIRS = 50
RELAY_RATE = 1000  # events/s, all senders together
WARM_UP_S = 5  # the relay's, before any is measured
ONE_PROCESS_P99_MS = 50.0
TWO_PROCESSES_P99_MS = 100.0
HTTP_P99_RATIO = 1.5
ROUND_S = 20  # each wrk round
HELD_BOUNDS = ("0.025", "0.1")  # seconds: the loop holds and collections counted in the report


@dataclass(frozen=True)
class Held:
    sessions: int
    rss_before_mb: float
    rss_with_mb: float

    @property
    def per_session_kib(self) -> float:
        return (self.rss_with_mb - self.rss_before_mb) * 1024 / self.sessions if self.sessions else 0.0


@dataclass(frozen=True)
class Holds:
    """Over a scenario: how often the server's event loop was held past each
    of HELD_BOUNDS (its heartbeat that late), and how many garbage
    collections paused it that long, from the server's histograms."""

    lag_over: tuple[int, ...]
    gc_over: tuple[int, ...]

    def __str__(self) -> str:
        return " / ".join(f"{lag} ({gc})" for lag, gc in zip(self.lag_over, self.gc_over, strict=True))


Counts = tuple[tuple[int, ...], tuple[int, ...]]


def loop_holds(base_urls: list[str]) -> Counts:
    """Observations above each of HELD_BOUNDS so far, summed over the servers:
    of the loop's lag, and of GC pauses (every generation)."""
    over = {name: [0] * len(HELD_BOUNDS) for name in ("keel_event_loop_lag_seconds", "keel_gc_pause_seconds")}
    for base_url in base_urls:
        text = httpx.get(f"{base_url}/metrics", timeout=30).text
        for family in text_string_to_metric_families(text):
            if family.name not in over:
                continue
            for sample in family.samples:
                if sample.name.endswith("_count"):
                    over[family.name] = [n + int(sample.value) for n in over[family.name]]
                elif sample.name.endswith("_bucket") and sample.labels["le"] in HELD_BOUNDS:
                    over[family.name][HELD_BOUNDS.index(sample.labels["le"])] -= int(sample.value)
    return tuple(over["keel_event_loop_lag_seconds"]), tuple(over["keel_gc_pause_seconds"])


def holds_since(before: Counts, base_urls: list[str]) -> Holds:
    lag_after, gc_after = loop_holds(base_urls)
    return Holds(
        tuple(b - a for a, b in zip(before[0], lag_after, strict=True)),
        tuple(b - a for a, b in zip(before[1], gc_after, strict=True)),
    )


@dataclass(frozen=True)
class Latency:
    name: str
    sent: int
    received: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    target_ms: float | None  # None: measured beside another load, for information
    held: Holds | None = None


@dataclass(frozen=True)
class Load:
    """How wrk loads the task list: as fast as it is answered, or paced."""

    name: str
    connections: int
    pause_ms: int = 0  # each connection's pause after an answer

    @property
    def paced(self) -> bool:
        return self.pause_ms > 0


# The benchmarks' usual 16 connections, which saturate the server: its p99
# then follows its throughput, and the ratio says what the sessions cost in
# capacity. The target's load is a set rate, a third of what the server
# answered flat out with no sessions (in this run, the better of two rounds:
# one slowed by the host would set the rate low): there, p99 says what the
# sessions and events cost each request.
FLAT_OUT = Load("as fast as answered (16 connections)", 16)
PACED_SHARE = 1 / 3
PACED_CONNECTIONS = 16


def paced_at(capacity_rps: float) -> Load:
    rate = max(10, round(capacity_rps * PACED_SHARE / 10) * 10)
    pause_ms = round(PACED_CONNECTIONS * 1000 / rate)
    return Load(f"{rate:,} requests/s (16 connections, {pause_ms} ms pauses)", PACED_CONNECTIONS, pause_ms)


@dataclass(frozen=True)
class HttpRound:
    name: str
    load: Load
    result: LoadResult
    held: Holds


def task_list_rounds(name: str, port: int, path: str, token: str, seconds: int, loads: list[Load]) -> list[HttpRound]:
    server = [f"http://127.0.0.1:{port}"]
    rounds = []
    for load in loads:
        before = loop_holds(server)
        result = run_wrk(port, path, token=token, connections=load.connections, seconds=seconds, pause_ms=load.pause_ms)
        rounds.append(HttpRound(name, load, result, holds_since(before, server)))
    return rounds


def keel_command(name: str) -> list[str]:
    return [sys.executable, "-m", "keel.cli", name]


WS_PATH = "/api/v1/ws"


def ws_url(server: Server) -> str:
    return f"ws://127.0.0.1:{server.port}{WS_PATH}"


async def relay(
    name: str,
    pairs_at: tuple[str, str],
    fleets: list[list[SeededDevice]],
    *,
    seconds: float,
    target_ms: float | None,
    rate: int = RELAY_RATE,
) -> Latency:
    send_url, receive_url = pairs_at
    servers = list(dict.fromkeys(url.replace("ws://", "http://").removesuffix(WS_PATH) for url in pairs_at))
    senders = await open_sessions(send_url, [devices[0] for devices in fleets])
    receivers = await open_sessions(receive_url, [devices[1] for devices in fleets])
    measured = Relay()
    before = await asyncio.to_thread(loop_holds, servers)
    try:
        await measured.run(list(zip(senders, receivers, strict=True)), rate=rate, seconds=seconds)
    finally:
        await close_all(senders + receivers)
    held = await asyncio.to_thread(holds_since, before, servers)
    p50, p99, worst = measured.quantiles()
    return Latency(name, measured.sent, len(measured.latencies_ms), p50, p99, worst, target_ms, held)


@dataclass(frozen=True)
class Scenario:
    """The database seeded for the realtime scenarios, and keel's environment on it."""

    env: dict[str, str]
    tasks_org: Seeded  # the task list's org, 1,000 tasks
    relay_fleets: list[list[SeededDevice]]  # RELAY_PAIRS users' sending and receiving devices
    idle_devices: list[SeededDevice]  # the held sessions' devices

    @property
    def tasks_path(self) -> str:
        return f"/api/v1/orgs/{self.tasks_org.org_id}/tasks"


def seed_scenario(database_url: str, workdir: Path, *, sockets: int, redis: bool) -> Scenario:
    env = keel_env(database_url, secrets.token_urlsafe(48), redis=redis) | {
        # The load generator's users hold many sessions and send fast: limits raised, stated in the report.
        "KEEL_REALTIME_MAX_CONNECTIONS_PER_USER": str(sockets // SOCKET_USERS + 2),
        "KEEL_REALTIME_MESSAGES_PER_S": "100000",
        "KEEL_LOG_LEVEL": "WARNING",
    }
    tasks_org = seed(env, workdir, tasks=1000, mixed=False, search=False)
    wanted = RELAY_PAIRS + SOCKET_USERS
    for members in [100] * (wanted // 100) + ([wanted % 100] if wanted % 100 else []):  # at most 100 a seed
        keel("seed", "--tasks", "0", "--members", str(members), env=env, cwd=workdir)
    fleets = asyncio.run(_seed(database_url, [2] * RELAY_PAIRS + [sockets // SOCKET_USERS] * SOCKET_USERS))
    idle_devices = [device for devices in fleets[RELAY_PAIRS:] for device in devices]
    return Scenario(env, tasks_org, fleets[:RELAY_PAIRS], idle_devices)


def run_backend(backend: str, *, quick: bool, workdir: Path) -> tuple[Held, list[Latency], list[HttpRound]]:
    workdir = workdir / backend
    workdir.mkdir()
    pg = backend == "postgres"
    sockets = 500 if quick else SOCKETS
    seconds = 4 if quick else 15
    wrk_seconds = 3 if quick else ROUND_S
    with _database(backend, workdir) as (database_url, _, _):
        scenario = seed_scenario(database_url, workdir, sockets=sockets, redis=pg)
        env, tasks_org = scenario.env, scenario.tasks_org
        relay_fleets, idle_devices = scenario.relay_fleets, scenario.idle_devices
        if pg:
            settle_postgres(database_url)
        latencies: list[Latency] = []
        rounds: list[HttpRound] = []

        def settle() -> None:
            """Between scenarios: the servers idle and, on PostgreSQL, the tables
            vacuumed and analyzed (autovacuum's work, off on this machine)."""
            wait_until_idle(Server.running)
            if pg:
                settle_postgres(database_url)

        with Server(f"keel-{backend}", keel_command("serve"), env, workdir, "/health/live") as api:
            token = login(api.base_url, tasks_org.email, tasks_org.password)
            tasks_path = scenario.tasks_path
            url = ws_url(api)
            settle()
            # Not measured: the users' streams then exist and hold events, as
            # in a deployment that has been running, and the settle analyzes
            # the tables with them.
            asyncio.run(relay("warm-up", (url, url), relay_fleets, seconds=min(seconds, WARM_UP_S), target_ms=None))
            settle()
            latencies.append(
                asyncio.run(
                    relay("one process", (url, url), relay_fleets, seconds=seconds, target_ms=ONE_PROCESS_P99_MS)
                )
            )
            settle()
            rounds += task_list_rounds("no sessions", api.port, tasks_path, token, wrk_seconds, [FLAT_OUT] * 2)
            # The set rate first: after a flat-out round the server is still
            # working off the events queued meanwhile.
            loads = [paced_at(max(r.result.rps for r in rounds)), FLAT_OUT]
            rounds += task_list_rounds("no sessions", api.port, tasks_path, token, wrk_seconds, loads[:1])
            held, with_sessions, under_load = asyncio.run(
                _with_sessions(api, idle_devices, relay_fleets, tasks_path, token, seconds=wrk_seconds, loads=loads)
            )
            rounds += with_sessions
            latencies.append(under_load)
            settle()
            rounds += task_list_rounds("no sessions", api.port, tasks_path, token, wrk_seconds, loads)
            if pg:
                other_env = env | {"KEEL_WORKER_IN_PROCESS": "false"}
                with Server(f"keel-{backend}-2", keel_command("serve"), other_env, workdir, "/health/live") as other:
                    settle()
                    pairs_at = (url, ws_url(other))
                    latencies.append(
                        asyncio.run(
                            relay(
                                "device on one process to a device on another, via Redis",
                                pairs_at,
                                relay_fleets,
                                seconds=seconds,
                                target_ms=TWO_PROCESSES_P99_MS,
                            )
                        )
                    )
    return held, latencies, rounds


async def _seed(database_url: str, per_user: list[int]) -> list[list[SeededDevice]]:
    from pydantic import SecretStr

    database = Database(DatabaseSettings(database_url=SecretStr(database_url)))
    try:
        return await seed_devices(database, per_user)
    finally:
        await database.dispose()


async def _with_sessions(
    api: Server,
    idle_devices: list[SeededDevice],
    relay_fleets: list[list[SeededDevice]],
    tasks_path: str,
    token: str,
    *,
    seconds: int,
    loads: list[Load],
) -> tuple[Held, list[HttpRound], Latency]:
    rss_before = api.rss_mb()
    sessions = await open_sessions(ws_url(api), idle_devices)
    try:
        await asyncio.sleep(3)  # the handshakes' garbage collected, presence written
        held = Held(len(sessions), rss_before, api.rss_mb())
        rounds = []
        latency = None
        for _ in range(2):
            flowing = asyncio.create_task(
                relay(
                    f"one process, {len(sessions):,} other sessions held, while wrk lists tasks",
                    (ws_url(api), ws_url(api)),
                    relay_fleets,
                    seconds=len(loads) * seconds + 2,
                    target_ms=None,
                )
            )
            await asyncio.sleep(1)
            name = f"{len(sessions):,} sessions, {RELAY_RATE} events/s"
            rounds += await asyncio.to_thread(task_list_rounds, name, api.port, tasks_path, token, seconds, loads)
            latency = await flowing
    finally:
        await close_all(sessions)
    assert latency is not None
    return held, rounds, latency


HELD_COLUMN = "loop held > 25 / > 100 ms (by GC)"


def _held_table(held: Held) -> list[str]:
    ok = held.sessions >= SOCKETS and held.rss_with_mb < RSS_TARGET_MB
    verdict = "met" if ok else f"missed (target ≥ {SOCKETS:,} sessions in < {RSS_TARGET_MB:.0f} MiB)"
    return [
        "| sessions | RSS before, MiB | RSS with them, MiB | KiB per session | target |",
        "| ---: | ---: | ---: | ---: | --- |",
        f"| {held.sessions:,} | {held.rss_before_mb:.0f} | {held.rss_with_mb:.0f} | {held.per_session_kib:.1f} "
        f"| ≥ {SOCKETS:,} in < {RSS_TARGET_MB:.0f} MiB: {verdict} |",
    ]


def _latency_table(latencies: list[Latency]) -> list[str]:
    lines = [
        f"| relay | events sent | received | p50 ms | p99 ms | max ms | {HELD_COLUMN} | target |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in latencies:
        if row.target_ms is None:
            target = "none (beside wrk's load)"
        else:
            ok = row.p99_ms < row.target_ms and row.received == row.sent
            target = f"p99 < {row.target_ms:.0f} ms, all received: {'met' if ok else 'missed'}"
        lines.append(
            f"| {row.name} | {row.sent:,} | {row.received:,} | {row.p50_ms:.1f} | {row.p99_ms:.1f} | {row.max_ms:.1f} "
            f"| {row.held or ''} | {target} |"
        )
    return lines


def _http_table(rounds: list[HttpRound]) -> list[str]:
    lines = [
        f"| task list | load | req/s | p50 ms | p99 ms | errors | {HELD_COLUMN} | ratio of p99 | target |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    loads = list(dict.fromkeys(r.load for r in rounds))
    for load in sorted(loads, key=lambda load: not load.paced):
        these = [r for r in rounds if r.load == load]
        without = [r.result.p99_ms for r in these if r.name == "no sessions"]
        baseline = sum(without) / len(without) if without else 0.0
        for row in these:
            result = row.result
            ratio = result.p99_ms / baseline if baseline and row.name != "no sessions" else None
            target = ""
            if ratio is not None and load.paced:
                target = f"≤ {HTTP_P99_RATIO} times without: {'met' if ratio <= HTTP_P99_RATIO else 'missed'}"
            elif ratio is not None:
                target = "none (the server saturated: what the sessions cost in capacity)"
            lines.append(
                f"| {row.name} | {load.name} | {result.rps:,.0f} | {result.p50_ms:.1f} | {result.p99_ms:.1f} "
                f"| {result.errors} | {row.held} | {'' if ratio is None else f'{ratio:.2f}'} | {target} |"
            )
    return lines


def write_report(path: Path, sections: dict[str, tuple[Held, list[Latency], list[HttpRound]]], command: str) -> None:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        "# keel realtime benchmarks",
        "",
        "Written by the benchmark run itself — do not edit by hand. Each figure stands",
        "beside its target or a baseline measured in the same run on the same machine.",
        "",
        f"- When: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- Machine: {machine}",
        f"- Command: `{command}`",
        "- Between scenarios the servers are let go idle and, on PostgreSQL, the tables are",
        "  vacuumed and analyzed: autovacuum is off on this machine's PostgreSQL (its CI",
        "  configuration), and without it the planner keeps the statistics of empty tables.",
        "- The load generator runs in the benchmark's process on the same two cores as keel",
        "  (and PostgreSQL and Redis): its own CPU is in every figure.",
        f"- Sessions: {SOCKET_USERS} users each with {SOCKETS // SOCKET_USERS} devices, each device one",
        "  authenticated session (Ed25519 handshake), idle; keel's per-user session limit is",
        "  raised for them.",
        f"- Relay: {RELAY_PAIRS} users each with a sending and a receiving device; the senders",
        f"  send {RELAY_RATE} events/s together (an open loop, 10 ms ticks); latency from the",
        "  send to the receiving device's read, on the load generator's one clock. Before the",
        f"  first, the same relay runs {WARM_UP_S} s unmeasured: the users' streams then exist and",
        "  hold events, as in a deployment that has been running, and the tables are analyzed",
        "  with them (on tables analyzed empty, PostgreSQL checks a batch's event ids for",
        "  duplicates by scanning the whole table, until autovacuum analyzes it).",
        "- Task list: wrk, GET of a 1,000-task org's first page, without sessions and with",
        "  the sessions held and events flowing (rounds A B B A; flat out, A A B B A); the",
        "  ratio is p99 with over the mean p99 without. The target's load is a set rate: a",
        "  third of what the server answered flat out without sessions, the better of two",
        "  rounds first in the run (one slowed by the host would set the rate low; each",
        "  connection pauses after an answer). Flat out (16 connections, no pauses) the",
        "  server is saturated: its p99 then follows its throughput, and that ratio says",
        "  what sessions cost in capacity.",
        f"  Rounds last {ROUND_S} s, so that a p99 counts how often the loop is held up, rather",
        "  than one hold alone deciding it.",
        "- Loop held: how many times the server's event loop ran its 10 ms heartbeat more than",
        "  25 / 100 ms late during the scenario, and in brackets how many garbage collections",
        "  paused it that long (keel_event_loop_lag_seconds, keel_gc_pause_seconds on /metrics).",
        "",
    ]
    for backend, (held, latencies, rounds) in sections.items():
        title = "PostgreSQL + Redis" if backend == "postgres" else "Embedded default (SQLite)"
        lines += [f"## {title}", "", "### Idle sessions held by one process", "", *_held_table(held), ""]
        lines += ["### Relay latency", "", *_latency_table(latencies), ""]
        lines += ["### The HTTP API beside them", "", *_http_table(rounds), ""]
    path.write_text("\n".join(lines))


def main() -> int:
    return domain_bench_main("realtime", __doc__ or "", run_backend, write_report)


if __name__ == "__main__":
    raise SystemExit(main())
