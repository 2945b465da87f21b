"""keel's webhook benchmark: delivery throughput, commit-to-delivery latency,
and what delivering costs the API, each beside a baseline measured in the same run.

    python -m bench.webhooks [--backends postgres,sqlite] [--quick]      (make bench-webhooks)

For each backend it creates and seeds a database of its own, starts a fast
receiver (``bench.webhook_receiver``) and keel as processes on 127.0.0.1,
and writes docs/benchmarks-webhooks.md:

- throughput: a backlog of task.created events, built while no worker runs,
  drained by one ``keel worker`` to ENDPOINTS endpoints on the receiver;
  against a plain aiohttp client posting as many signed messages to the
  same receiver at the same concurrency (the HTTP ceiling of this machine);
- latency: tasks created at a steady rate, each delivered to one endpoint;
  commit-to-delivery as the receiver sees it, with the worker in the API
  process (the embedded default's deployment) and as a ``keel worker`` of
  its own; and to an endpoint whose org's other endpoints hang, answer 500,
  stream a huge body or redirect to the cloud metadata address;
- task_create while each new task is delivered to an endpoint, against
  task_create in an org without endpoints, alternating on the same server.
"""

from __future__ import annotations

import asyncio
import os
import platform
import secrets
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from bench.load import run_wrk
from bench.report import Row, domain_bench_main
from bench.run import Plan, _database, _row, alternate, keel_env, login, seed, settle_postgres
from bench.servers import Server, wait_until_idle

ROOT = Path(__file__).resolve().parent.parent
ENDPOINTS = 4  # the throughput org's endpoints, each subscribed to task.created
CONCURRENCY = 64  # attempts in flight: keel's default, and the baseline client's
THROUGHPUT_TARGET = 1000.0  # deliveries/s from one worker
LATENCY_RATE = 200  # events/s
LATENCY_P99_TARGET_MS = 250.0
# Endpoints of the receiver that misbehave (bench/webhook_receiver.py).
BAD_RECEIVERS = ("hang", "fail", "huge", "redirect")


@dataclass(frozen=True)
class Drained:
    """A backlog delivered, as the receiver saw it."""

    name: str
    requests: int
    distinct: int
    seconds: float

    @property
    def per_s(self) -> float:
        return (self.requests - 1) / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Latency:
    name: str
    events: int
    delivered: int
    p50_ms: float
    p99_ms: float
    max_ms: float


class Receiver:
    def __init__(self, server: Server) -> None:
        self.server = server

    def url(self, endpoint: str) -> str:
        return f"{self.server.base_url}/{endpoint}"

    def reset(self) -> None:
        httpx.post(f"{self.server.base_url}/reset", timeout=10).raise_for_status()

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.server.base_url}/stats", timeout=30).raise_for_status().json())

    def wait_for(self, requests: int, *, within_s: float) -> dict[str, Any]:
        """The stats once at least ``requests`` have arrived and no more came
        for half a second (or at the deadline)."""
        deadline = time.monotonic() + within_s
        stats = self.stats()
        while time.monotonic() < deadline:
            time.sleep(0.5)
            latest = self.stats()
            if latest["requests"] >= requests and latest["requests"] == stats["requests"]:
                return latest
            stats = latest
        return stats


class Org:
    """A seeded org, as its owner sees it."""

    def __init__(self, base: str, org_id: str, email: str, password: str) -> None:
        self.base, self.org_id = base, org_id
        self.token = login(base, email, password)
        self.tasks_path = f"/api/v1/orgs/{org_id}/tasks"

    def add_endpoint(self, url: str) -> str:
        response = httpx.post(
            f"{self.base}/api/v1/orgs/{self.org_id}/webhooks",
            json={"url": url, "event_types": ["task.created"], "description": "bench receiver"},
            headers={"authorization": f"Bearer {self.token}"},
            timeout=30,
        )
        return str(response.raise_for_status().json()["id"])

    def disable_endpoint(self, server: Server, endpoint_id: str) -> None:
        httpx.patch(
            f"{server.base_url}/api/v1/orgs/{self.org_id}/webhooks/{endpoint_id}",
            json={"enabled": False},
            headers={"authorization": f"Bearer {self.token}"},
            timeout=30,
        ).raise_for_status()


def seeded_orgs(env: dict[str, str], workdir: Path, count: int) -> list[tuple[str, str, str]]:
    """``count`` orgs of a few tasks each: (org id, owner email, password)."""
    orgs = []
    for _ in range(count):
        seeded = seed(env, workdir, tasks=200, mixed=False, search=False)
        orgs.append((seeded.org_id, seeded.email, seeded.password))
    return orgs


async def _steady_creates(base: str, path: str, token: str, *, rate: int, seconds: int) -> int:
    """POST a task every 1/``rate`` s for ``seconds`` (an open loop: a slow
    answer never delays the next request); how many were created."""
    headers = {"authorization": f"Bearer {token}"}
    created = 0

    async def one(client: aiohttp.ClientSession, number: int) -> None:
        nonlocal created
        async with client.post(path, json={"title": f"latency task {number}"}, headers=headers) as response:
            await response.read()
            created += response.status == 201

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(base, connector=connector) as client:
        started = time.monotonic()
        pending = []
        for number in range(rate * seconds):
            await asyncio.sleep(max(0.0, started + number / rate - time.monotonic()))
            pending.append(asyncio.create_task(one(client, number)))
        await asyncio.gather(*pending)
    return created


async def _blast(url: str, count: int, concurrency: int) -> None:
    """The throughput baseline: ``count`` signed POSTs of a delivery's size,
    ``concurrency`` in flight, from one process with one aiohttp client."""
    import base64
    import hashlib
    import hmac

    key = secrets.token_bytes(24)
    body = b'{"type":"task.created","data":{"id":"' + b"0" * 300 + b'"},"org_seq":1}'
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(count):
        queue.put_nowait(number)

    async def sender(client: aiohttp.ClientSession) -> None:
        while not queue.empty():
            number = queue.get_nowait()
            message_id, timestamp = f"msg_{number}", str(int(time.time()))
            signed = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
            headers = {
                "webhook-id": message_id,
                "webhook-timestamp": timestamp,
                "webhook-signature": "v1," + base64.b64encode(signed).decode(),
                "content-type": "application/json",
            }
            async with client.post(url, data=body, headers=headers, allow_redirects=False) as response:
                await response.content.read(512)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as client:
        await asyncio.gather(*(sender(client) for _ in range(concurrency)))


def _drained(name: str, stats: dict[str, Any]) -> Drained:
    return Drained(name, stats["requests"], stats["distinct"], stats["last"] - stats["first"])


def _latency(name: str, events: int, stats: dict[str, Any]) -> Latency:
    latencies = sorted(stats["latencies_ms"])
    if not latencies:
        return Latency(name, events, 0, float("inf"), float("inf"), float("inf"))
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Latency(name, events, len(latencies), cuts[49], cuts[98], latencies[-1])


def keel_command(name: str) -> list[str]:
    return [sys.executable, "-m", "keel.cli", name]


def throughput(
    api: Server, receiver: Receiver, org: Org, env: dict[str, str], *, rounds: int, backlog_s: int
) -> list[Drained]:
    """Each round: a backlog built while no worker runs, drained by one
    ``keel worker``; then the baseline client posts as many messages."""
    drained = []
    for round_number in range(rounds):
        made = run_wrk(api.port, org.tasks_path, method="POST", token=org.token, connections=16, seconds=backlog_s)
        expected = (made.requests - made.errors) * ENDPOINTS
        receiver.reset()
        with Server(f"keel-worker-drain-{round_number}", keel_command("worker"), env, api.cwd, None):
            stats = receiver.wait_for(expected, within_s=300)
        drained.append(_drained(f"keel worker, {ENDPOINTS} endpoints", stats))
        receiver.reset()
        asyncio.run(_blast(receiver.url("baseline"), stats["requests"], CONCURRENCY))
        drained.append(_drained("aiohttp client alone", receiver.wait_for(stats["requests"], within_s=60)))
    return drained


def latency(name: str, api: Server, receiver: Receiver, org: Org, *, seconds: int) -> Latency:
    wait_until_idle(Server.running)
    receiver.reset()
    creating = _steady_creates(api.base_url, org.tasks_path, org.token, rate=LATENCY_RATE, seconds=seconds)
    events = asyncio.run(creating)
    return _latency(name, events, receiver.wait_for(events, within_s=60))


def run_backend(backend: str, *, quick: bool, workdir: Path) -> tuple[list[Drained], list[Latency], list[Row]]:
    workdir = workdir / backend
    workdir.mkdir()
    pg = backend == "postgres"
    receiver_command = [sys.executable, "-m", "bench.webhook_receiver", "{port}"]
    with_path = {"PYTHONPATH": str(ROOT)}
    with (
        _database(backend, workdir) as (database_url, _, _),
        Server("receiver", receiver_command, with_path, workdir, "/health/live") as receiver_server,
        Server("bad-receiver", receiver_command, with_path, workdir, "/health/live") as bad_receiver_server,
    ):
        receiver, bad_receiver = Receiver(receiver_server), Receiver(bad_receiver_server)
        env = keel_env(database_url, secrets.token_urlsafe(48), redis=pg) | {
            "KEEL_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
            # A fast receiver that asks for no throttling: the per-endpoint
            # limits are raised so that the worker's own pace shows.
            "KEEL_WEBHOOK_RATE_LIMIT_PER_ENDPOINT_PER_S": "100000",
            "KEEL_WEBHOOK_MAX_CONCURRENCY_PER_ENDPOINT": str(CONCURRENCY // ENDPOINTS),
            "KEEL_WEBHOOK_MAX_CONCURRENCY": str(CONCURRENCY),
        }
        accounts = seeded_orgs(env, workdir, 4)
        if pg:
            settle_postgres(database_url)
        seconds = 5 if quick else 20
        api_only = env | {"KEEL_WORKER_IN_PROCESS": "false"}
        with Server(f"keel-api-{backend}", keel_command("serve"), api_only, workdir, "/health/live") as api:
            fanned, single, quiet, troubled = (Org(api.base_url, *account) for account in accounts)
            for number in range(ENDPOINTS):
                fanned.add_endpoint(receiver.url(f"fanned-{number}"))
            single.add_endpoint(receiver.url("single"))
            troubled.add_endpoint(receiver.url("healthy"))
            bad_endpoints = [troubled.add_endpoint(bad_receiver.url(path)) for path in BAD_RECEIVERS]
            drained = throughput(api, receiver, fanned, env, rounds=1 if quick else 2, backlog_s=3 if quick else 10)
            latencies = []
            if pg:  # several processes share PostgreSQL and Redis; SQLite is one process's
                with Server(f"keel-worker-{backend}", keel_command("worker"), env, workdir, None):
                    latencies.append(latency("keel worker beside keel serve", api, receiver, single, seconds=seconds))

        with Server(f"keel-{backend}", keel_command("serve"), env, workdir, "/health/live") as keel:
            latencies.insert(0, latency("worker in keel serve", keel, receiver, single, seconds=seconds))
            beside = "worker in keel serve, the endpoint beside " + ", ".join(BAD_RECEIVERS) + " ones"
            latencies.insert(1, latency(beside, keel, receiver, troubled, seconds=seconds))
            for endpoint_id in bad_endpoints:  # their retries wait, rather than land in the next scenario
                troubled.disable_endpoint(keel, endpoint_id)
            plan = Plan(
                rounds=2 if quick else 4,
                seconds=2 if quick else 5,
                connections=16,
                write_connections=64,
                overload_connections=0,
                overload_seconds=0,
                deep_tasks={},
            )
            create = {"method": "POST", "connections": plan.write_connections}
            flowing, without = alternate(
                plan,
                (keel, {**create, "path": single.tasks_path, "token": single.token}),
                (keel, {**create, "path": quiet.tasks_path, "token": quiet.token}),
            )
    ratio = flowing.result.rps / without.result.rps if without.result.rps else 0.0
    rows = [
        _row("task_create, no endpoints", without, "baseline"),
        _row("task_create, each task delivered to an endpoint", flowing, "no endpoints", ratio, 0.80),
    ]
    return drained, latencies, rows


def _drain_table(drained: list[Drained]) -> list[str]:
    lines = [
        "| run | deliveries | distinct webhook-ids | seconds | deliveries/s | vs the client alone | targets |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for keel_run, baseline in zip(drained[::2], drained[1::2], strict=True):
        ratio = keel_run.per_s / baseline.per_s if baseline.per_s else 0.0
        met = keel_run.per_s >= THROUGHPUT_TARGET and keel_run.requests == keel_run.distinct
        verdict = f"≥ {THROUGHPUT_TARGET:,.0f}/s, none twice: " + ("met" if met else "**missed**")
        for run, shown_ratio, shown_verdict in ((keel_run, f"{ratio:.2f}", verdict), (baseline, "", "")):
            lines.append(
                f"| {run.name} | {run.requests:,} | {run.distinct:,} | {run.seconds:.2f} | {run.per_s:,.0f} "
                f"| {shown_ratio} | {shown_verdict} |"
            )
    return lines


def _latency_table(latencies: list[Latency]) -> list[str]:
    lines = [
        f"| worker | events at {LATENCY_RATE}/s | delivered | p50 ms | p99 ms | max ms | targets |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for run in latencies:
        met = run.p99_ms < LATENCY_P99_TARGET_MS and run.delivered == run.events
        verdict = f"p99 < {LATENCY_P99_TARGET_MS:g} ms, all delivered: " + ("met" if met else "**missed**")
        lines.append(
            f"| {run.name} | {run.events:,} | {run.delivered:,} | {run.p50_ms:.1f} | {run.p99_ms:.1f} "
            f"| {run.max_ms:.1f} | {verdict} |"
        )
    return lines


def write_report(path: Path, sections: dict[str, tuple[list[Drained], list[Latency], list[Row]]], command: str) -> None:
    from bench.report import _table as load_table

    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        "# keel webhook benchmarks",
        "",
        "Written by the benchmark run itself — do not edit by hand. Each figure stands",
        "beside a baseline measured in the same run on the same machine.",
        "",
        f"- When: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- Machine: {machine}",
        f"- Command: `{command}`",
        "- The receiver (`bench/webhook_receiver.py`) answers 204 at once; keel runs with",
        f"  {CONCURRENCY} attempts in flight per process (the default), per-endpoint limits raised",
        "  so that the worker's own pace shows.",
        "- Throughput: the receiver's first to last arrival while one `keel worker` drains a",
        f"  backlog of task.created events, each to {ENDPOINTS} endpoints; the baseline is a plain",
        f"  aiohttp client posting as many signed messages of the same size, {CONCURRENCY} in flight.",
        f"- Latency: tasks created at {LATENCY_RATE}/s (an open loop), each delivered to one endpoint;",
        "  arrival at the receiver less the event's timestamp, written in the transaction",
        "  before its commit. `beside ...`: the org's other endpoints, on a receiver process of",
        "  their own, hang (past keel's 15 s timeout), answer 500, answer 500 with a 100 MB body",
        "  or redirect to the cloud metadata address, all with their rate limit raised too.",
        "- task_create: wrk, alternating rounds between an org whose every new task is",
        "  delivered to an endpoint and an org without endpoints, on one `keel serve` with",
        "  its in-process worker.",
        "",
    ]
    for backend, (drained, latencies, rows) in sections.items():
        title = "PostgreSQL + Redis" if backend == "postgres" else "Embedded default (SQLite)"
        lines += [f"## {title}", "", "### Delivery throughput", "", *_drain_table(drained), ""]
        lines += ["### Commit-to-delivery latency", "", *_latency_table(latencies), ""]
        lines += ["### What delivering costs the API", "", *load_table(rows), ""]
    path.write_text("\n".join(lines))


def main() -> int:
    return domain_bench_main("webhooks", __doc__ or "", run_backend, write_report)


if __name__ == "__main__":
    raise SystemExit(main())
