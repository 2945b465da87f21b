"""A/B of two keel builds, or settings, in the realtime benchmark's tightest
scenario: the task list at a set rate beside 10,000 sessions and the relay.

    python -m bench.realtime_ab --b-tree PATH [--b-env KEY=VALUE ...] [--backend sqlite] [--rounds 8] [--rate N]

Arm A is this checkout as it is; arm B is another checkout's ``src`` (a git
worktree holding a candidate change) and/or extra environment. One database
is seeded for both. Each round starts one arm's server, measures the task
list at the set rate without sessions, then with SOCKETS sessions held and
RELAY_RATE events/s flowing, and stops it; rounds go A B B A A B B A..., so
that a drift in the host's speed falls on both arms. The set rate is a third
of what arm A answered flat out without sessions, measured once, first (as
in ``bench.realtime``). Printed per round: both p99s, their ratio (the
target's), and the server's CPU beside the sessions; then each arm's mean.

An accelerator stays only while a same-run A/B shows a target missed
without it (docs/performance.md); this runs one without editing the
benchmark. ``--rate`` scales the relay for a host much slower than usual
(where 1,000 events/s alone would fill the server's core); the target
itself is at RELAY_RATE.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.load import run_wrk
from bench.realtime import (
    FLAT_OUT,
    HTTP_P99_RATIO,
    RELAY_RATE,
    ROUND_S,
    SOCKETS,
    WARM_UP_S,
    Load,
    Scenario,
    keel_command,
    paced_at,
    relay,
    seed_scenario,
    ws_url,
)
from bench.realtime_client import close_all, open_sessions
from bench.run import _database, login, settle_postgres
from bench.servers import Server, wait_until_idle


@dataclass(frozen=True)
class Arm:
    name: str
    env: dict[str, str]


@dataclass(frozen=True)
class Round:
    arm: str
    without_p99_ms: float
    with_p99_ms: float
    server_cpu: float  # cores, beside the sessions

    @property
    def ratio(self) -> float:
        return self.with_p99_ms / self.without_p99_ms


def arms(b_tree: Path | None, b_env: list[str]) -> tuple[Arm, Arm]:
    extra = dict(pair.split("=", 1) for pair in b_env)
    if b_tree is not None:
        extra["PYTHONPATH"] = str(b_tree.resolve() / "src")
    if not extra:
        raise SystemExit("arm B needs --b-tree or --b-env")
    return Arm("A", {}), Arm("B", extra)


def one_round(arm: Arm, scenario: Scenario, workdir: Path, load: Load | None, rate: int) -> tuple[Load, Round]:
    with Server(f"keel-{arm.name}", keel_command("serve"), scenario.env | arm.env, workdir, "/health/live") as api:
        token = login(api.base_url, scenario.tasks_org.email, scenario.tasks_org.password)
        url = ws_url(api)
        asyncio.run(relay("warm-up", (url, url), scenario.relay_fleets, seconds=WARM_UP_S, target_ms=None, rate=rate))
        wait_until_idle([api])
        if load is None:
            flat_out = [
                run_wrk(api.port, scenario.tasks_path, token=token, connections=FLAT_OUT.connections, seconds=ROUND_S)
                for _ in range(2)
            ]
            capacity = max(result.rps for result in flat_out)
            load = paced_at(capacity)
            print(f"set rate: {load.name} (a third of {capacity:,.0f} requests/s)", flush=True)
        paced = load

        def p99_at_the_set_rate(seconds: int = ROUND_S) -> float:
            return run_wrk(
                api.port,
                scenario.tasks_path,
                token=token,
                connections=paced.connections,
                seconds=seconds,
                pause_ms=paced.pause_ms,
            ).p99_ms

        # Not measured: a fresh server's first requests (cold caches, first
        # compilations) would land in the round without sessions alone.
        p99_at_the_set_rate(WARM_UP_S)
        without = p99_at_the_set_rate()

        async def beside_sessions() -> tuple[float, float]:
            sessions = await open_sessions(url, scenario.idle_devices)
            try:
                await asyncio.sleep(3)  # the handshakes' garbage collected, presence written
                flowing = asyncio.create_task(
                    relay("beside", (url, url), scenario.relay_fleets, seconds=ROUND_S + 3, target_ms=None, rate=rate)
                )
                await asyncio.sleep(1)
                cpu_before, started = api.cpu_seconds(), time.monotonic()
                p99 = await asyncio.to_thread(p99_at_the_set_rate)
                cpu = (api.cpu_seconds() - cpu_before) / (time.monotonic() - started)
                await flowing
                return p99, cpu
            finally:
                await close_all(sessions)

        with_p99, cpu = asyncio.run(beside_sessions())
    return load, Round(arm.name, without, with_p99, cpu)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--rounds", type=int, default=8, help="in all, both arms (a multiple of four)")
    parser.add_argument("--b-tree", type=Path, help="a checkout whose src/ arm B runs")
    parser.add_argument("--b-env", action="append", default=[], metavar="KEY=VALUE", help="arm B's extra environment")
    parser.add_argument("--rate", type=int, default=RELAY_RATE, help="the relay's events/s")
    args = parser.parse_args()
    arm_a, arm_b = arms(args.b_tree, args.b_env)
    order = [arm_a, arm_b, arm_b, arm_a] * max(1, args.rounds // 4)
    pg = args.backend == "postgres"
    with tempfile.TemporaryDirectory(prefix="keel-ab-") as scratch, _database(args.backend, Path(scratch)) as urls:
        workdir, database_url = Path(scratch), urls[0]
        scenario = seed_scenario(database_url, workdir, sockets=SOCKETS, redis=pg)
        load: Load | None = None
        rounds: list[Round] = []
        for arm in order:
            if pg:
                settle_postgres(database_url)
            load, measured = one_round(arm, scenario, workdir, load, args.rate)
            rounds.append(measured)
            print(
                f"{measured.arm}: p99 {measured.without_p99_ms:.1f} ms without sessions, "
                f"{measured.with_p99_ms:.1f} beside them: {measured.ratio:.2f}x, server {measured.server_cpu:.2f} core",
                flush=True,
            )
    for arm in (arm_a, arm_b):
        mine = [r for r in rounds if r.arm == arm.name]
        met = sum(r.ratio <= HTTP_P99_RATIO for r in mine)
        print(
            f"{arm.name} {arm.env or '(as checked out)'}: ratio mean {statistics.mean(r.ratio for r in mine):.2f} "
            f"({', '.join(f'{r.ratio:.2f}' for r in mine)}), ≤ {HTTP_P99_RATIO} in {met} of {len(mine)}; "
            f"server {statistics.mean(r.server_cpu for r in mine):.2f} core beside the sessions"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
