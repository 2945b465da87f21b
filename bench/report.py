"""The benchmark table, printed and written to docs/benchmarks.md by the run itself."""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from bench.load import LoadResult


@dataclass(frozen=True)
class Row:
    name: str
    against: str
    result: LoadResult
    rss_mb: float
    cpu_s: float
    ratio: float | None
    target: float | None


def _verdict(row: Row) -> str:
    if row.ratio is None or row.target is None:
        return ""
    return "meets" if row.ratio >= row.target else f"misses by {row.target - row.ratio:.2f}"


def write_report(
    path: Path,
    rows: list[Row],
    *,
    machine: str,
    command: str,
    tasks: int,
    connections: int,
    write_connections: int,
    seconds: int,
) -> None:
    versions = ", ".join(f"{p} {version(p)}" for p in ("fastapi", "uvicorn", "sqlalchemy", "pydantic"))
    lines = [
        "# keel benchmarks",
        "",
        "Written by the benchmark run itself — do not edit by hand. Ratios compare keel",
        "with a baseline measured in the same run on the same machine; absolute numbers",
        "drift between runs on these shared machines, ratios much less.",
        "",
        f"- When: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- Machine: {machine}",
        f"- Versions: {versions}",
        f"- Command: `{command}`",
        f"- Data: embedded default (SQLite file), {tasks} seeded tasks; one uvicorn worker per server;",
        f"  reads at {connections} connections, writes at {write_connections}, {seconds} s each; keel runs with",
        "  its production middleware (request id, JSON access log, metrics, security headers) and rate limits off.",
        "",
        "| run | vs | req/s | p50 ms | p90 ms | p99 ms | errors | RSS MB | CPU s | ratio | target |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        r = row.result
        ratio = f"{row.ratio:.2f}" if row.ratio is not None else ""
        target = f"≥ {row.target:.2f} ({_verdict(row)})" if row.target is not None else ""
        lines.append(
            f"| {row.name} | {row.against} | {r.rps:,.0f} | {r.p50_ms:.1f} | {r.p90_ms:.1f} | {r.p99_ms:.1f} | "
            f"{r.errors} | {row.rss_mb:.0f} | {row.cpu_s:.1f} | {ratio} | {target} |"
        )
    lines += [
        "",
        "Baselines: (a) a raw ASGI app returning constant JSON; (a2) a bare FastAPI app",
        "returning the same; (b) FastAPI + PyJWT verification + the same task SQL on the raw",
        "sqlite3 driver in a thread + orjson (list joins project and assignee names; insert",
        "writes the task and its outbox row in one transaction).",
        "",
        "Not yet measured here: the PostgreSQL + Redis variants, `mixed`, `deep_page`,",
        "`overload` and the middleware on/off comparison (see the benchmark issue).",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))
