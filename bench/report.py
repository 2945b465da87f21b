"""The benchmark tables, printed and written to docs/benchmarks.md by the run itself."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.load import LoadResult

if TYPE_CHECKING:
    from bench.run import Plan


def cpu_ms_per_request(cpu_s: float, result: LoadResult) -> float:
    """The server process's CPU time per request it answered (uvicorn and HTTP parsing included)."""
    return cpu_s * 1000 / result.requests if result.requests else float("inf")


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    shortfall: str = ""  # said when missed: by how much, and what the run's baseline did


@dataclass(frozen=True)
class Row:
    name: str
    against: str
    result: LoadResult
    rss_mb: float
    cpu_s: float
    ratio: float | None = None
    target: float | None = None
    checks: list[Check] = field(default_factory=list)
    rounds_rps: tuple[float, ...] = ()

    @property
    def cpu_ms_per_request(self) -> float:
        return cpu_ms_per_request(self.cpu_s, self.result)


def verdict(row: Row) -> str:
    """Every target of the row, each marked met or missed (with by how much)."""
    parts = []
    if row.ratio is not None and row.target is not None:
        met = row.ratio >= row.target
        # Three decimals when missed: the ratio column's two can round a miss up to the line.
        shortfall = f"**missed** ({row.ratio:.3f}, short by {row.target - row.ratio:.3f})"
        parts.append(f"ratio ≥ {row.target:.2f} " + ("met" if met else shortfall))
    for check in row.checks:
        if check.ok:
            parts.append(f"{check.name} met")
        else:
            parts.append(f"{check.name} **missed**" + (f" ({check.shortfall})" if check.shortfall else ""))
    return "; ".join(parts)


def _table(rows: list[Row]) -> list[str]:
    lines = [
        "| run | vs | req/s | each round | p50 ms | p90 ms | p99 ms | errors: 503 / 429 / 5xx / 4xx / socket "
        "| RSS MB | CPU s | CPU ms/req | ratio | targets |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        r = row.result
        errors = f"{r.shed} / {r.rate_limited} / {r.server_errors} / {r.client_errors} / {r.socket_errors}"
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else ""
        rounds = " / ".join(f"{rps:,.0f}" for rps in row.rounds_rps)
        lines.append(
            f"| {row.name} | {row.against} | {r.rps:,.0f} | {rounds} | {r.p50_ms:.1f} | {r.p90_ms:.1f} | "
            f"{r.p99_ms:.1f} | {errors} | {row.rss_mb:.0f} | {row.cpu_s:.1f} | {row.cpu_ms_per_request:.2f} | "
            f"{ratio} | {verdict(row)} |"
        )
    return lines


def write_report(
    path: Path, framework: list[Row], sections: dict[str, list[Row]], *, machine: str, command: str, plan: Plan
) -> None:
    versions = ", ".join(
        f"{p} {version(p)}" for p in ("fastapi", "uvicorn", "sqlalchemy", "pydantic", "asyncpg", "redis")
    )
    lines = [
        "# keel benchmarks",
        "",
        "Written by the benchmark run itself — do not edit by hand (the analysis lives in",
        "`docs/performance.md`). Ratios compare keel with a baseline measured in the same",
        "run on the same machine; absolute numbers drift between runs on these shared",
        "machines, ratios much less.",
        "",
        f"- When: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- Machine: {machine}",
        f"- Versions: {versions}",
        f"- Command: `{command}`",
        f"- Load: wrk, one uvicorn worker per server; reads and `mixed` at {plan.connections} connections,",
        f"  `task_create` at {plan.write_connections}. Each comparison alternates its sides for {plan.rounds}"
        f" rounds of {plan.seconds} s,",
        "  every other round in reverse order, each once every server is idle (so the machine's slow",
        "  spells fall on all sides); req/s are totals over the rounds (each round's in the next column),",
        "  latency",
        f"  percentiles the worst round's. `overload`: {plan.overload_connections} connections for"
        f" {plan.overload_seconds} s.",
        "- keel runs with its production middleware (request id, JSON access log, metrics,",
        "  security headers, request limits, load shedding); on PostgreSQL + Redis also with",
        "  rate limiting on Redis (budgets set high enough never to refuse). `middleware off`",
        "  is the same build with the middleware list emptied and rate limits off.",
        "- CPU ms/req: the server process's CPU time over the run divided by the requests it",
        "  answered — what one request costs the server, HTTP parsing included.",
        "",
        "## Framework baselines",
        "",
        *_table(framework),
        "",
    ]
    for backend, rows in sections.items():
        title = "PostgreSQL + Redis" if backend == "postgres" else "Embedded default (SQLite)"
        lines += [f"## {title}", "", *_table(rows), ""]
    lines += [
        "Baselines: (a) a raw ASGI app returning constant JSON; (a2) a bare FastAPI app",
        "returning the same; (b) FastAPI + PyJWT verification + the same task SQL on the raw",
        "driver (sqlite3 in a thread, or an asyncpg pool) + orjson (list joins project and",
        "assignee names; insert writes the task and its outbox row in one transaction).",
        "`mixed` is 80 % reads (task get and list) and 20 % creates from 100 users in 10 orgs.",
        "`deep_page 1000` follows 999 cursors first and then loads that page.",
        "",
        "What keel does for speed, and what each choice bought: `docs/performance.md`.",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def domain_bench_main(
    name: str,
    doc: str,
    run_backend: Callable[..., Any],
    write_report: Callable[[Path, dict[str, Any], str], None],
) -> int:
    """A domain benchmark's command line (``python -m bench.NAME``): runs each
    backend asked for, then writes and prints docs/benchmarks-NAME.md."""
    from bench.load import wrk_available

    root = Path(__file__).resolve().parent.parent
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backends", default="postgres,sqlite", help="comma-separated: postgres, sqlite")
    parser.add_argument("--quick", action="store_true", help="short runs: checks the harness only")
    parser.add_argument("--report", type=Path, default=root / "docs" / f"benchmarks-{name}.md")
    args = parser.parse_args()
    if not wrk_available():
        return 2
    workdir = root / "bench" / "results" / (f"{name}-" + time.strftime("%Y%m%d-%H%M%S"))
    workdir.mkdir(parents=True)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    sections = {backend: run_backend(backend, quick=args.quick, workdir=workdir) for backend in backends}
    command = f"make bench-{name}  (python -m bench.{name} " + " ".join(sys.argv[1:]) + ")"
    write_report(args.report, sections, command)
    print(args.report.read_text())
    return 0
