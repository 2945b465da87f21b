"""Instructions keel executes per request, counted by valgrind's callgrind.

    python -m bench.instructions [--scenario task_list] [--database-url URL] [--redis]
                                 [--source DIR ...] [-- PROFILE_ARGS]

Runs ``python -m bench.profile`` under ``valgrind --tool=callgrind`` twice,
with a short and a long series of requests, and divides the difference in
instructions by the difference in requests: start-up, seeding and warm-up
cancel out, and what is left is keel's own work per request, in process (no
server, no network; the database's own work is in another process and not
counted). ``--redis`` counts with rate limiting on Redis, as keel runs on
PostgreSQL + Redis (without it, limits are off). Both series read one org
seeded for the run (the count depends on the data). Unlike a timing, the
count does not depend on what else the machine is doing, so two builds can
be compared on a noisy host: give ``--source`` once for each checkout's
``src``. Each run takes a minute or two (callgrind runs Python ~50x slower).
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.run import keel_env, seed

ROOT = Path(__file__).resolve().parent.parent
_COLLECTED = re.compile(r"Collected : (\d+)")


def _instructions(scenario: str, requests: int, *, source: Path, env: dict[str, str], extra: list[str]) -> int:
    completed = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            sys.executable,
            "-m",
            "bench.profile",
            "--scenario",
            scenario,
            "--requests",
            str(requests),
            *extra,
        ],
        # One hash seed: dict and set layouts, and so the count, repeat.
        env={**env, "PYTHONPATH": f"{ROOT}{os.pathsep}{source}", "PYTHONHASHSEED": "0"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        check=True,
    )
    found = _COLLECTED.search(completed.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count: {completed.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default="task_list", choices=["health", "task_get", "task_list", "task_create"])
    parser.add_argument("--database-url", help="an already migrated database (default: a fresh SQLite file)")
    parser.add_argument(
        "--source", type=Path, action="append", help="a keel source tree to count (repeat to compare; default: src)"
    )
    parser.add_argument("--short", type=int, default=50, help="requests in the short series")
    parser.add_argument("--long", type=int, default=250, help="requests in the long series")
    parser.add_argument(
        "--redis", action="store_true", help="rate limiting on Redis, as keel runs on PostgreSQL + Redis (default: off)"
    )
    parser.add_argument("profile_args", nargs="*", help="passed on to bench.profile (after --)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("bench.instructions needs valgrind (apt-get install valgrind)", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="keel-instructions-"))
    url = args.database_url or f"sqlite:///{workdir / 'keel.db'}"
    env = {**os.environ, **keel_env(url, secrets.token_urlsafe(48), redis=args.redis)}
    if args.redis:
        env["KEEL_RATE_LIMITS"] = "on"  # bench.profile's own default is off
    # Both series read the same seeded org: the count depends on the data.
    seeded = seed(env, workdir, tasks=20_000, mixed=False)
    extra = [*args.profile_args, "--org-id", seeded.org_id, "--email", seeded.email, "--password", seeded.password]
    shown = " ".join(args.profile_args)
    for source in args.source or [ROOT / "src"]:
        count = functools.partial(_instructions, args.scenario, source=source.resolve(), env=env, extra=extra)
        with ThreadPoolExecutor(max_workers=2) as pool:
            short, long = pool.map(count, (args.short, args.long))
        per_request = (long - short) / (args.long - args.short)
        print(f"{args.scenario}: {per_request / 1e6:.3f} M instructions per request ({source} {shown})", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
