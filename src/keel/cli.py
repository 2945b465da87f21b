"""The ``keel`` command line: serve, migrate, worker, check-config."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated

import typer
import uvicorn
import uvloop

from keel.config import Environment, Settings, configuration_problems, load_settings
from keel.core import schema
from keel.core.db import Database
from keel.core.errors import database_unavailable
from keel.main import run_worker
from keel.seed import seed_demo
from keel.serving import uvicorn_options

app = typer.Typer(help="keel: a production-ready, multi-tenant backend service.", no_args_is_help=True)


def _settings_or_exit() -> Settings:
    """Load settings; print every problem and exit non-zero if they are unfit."""
    try:
        settings = load_settings()
    except ValueError as exc:  # pydantic's ValidationError names fields, never secret values
        typer.echo(f"keel: invalid configuration:\n{exc}", err=True)
        raise typer.Exit(code=2) from None
    problems = configuration_problems(settings)
    if problems:
        typer.echo(f"keel: refusing to start in {settings.env.value}:", err=True)
        for problem in problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(code=2)
    return settings


async def _migrate(settings: Settings, revision: str) -> None:
    database = Database(settings.database)
    try:
        await schema.upgrade(database.engine, revision)
    except Exception as exc:
        if not database_unavailable(exc):
            raise
        # One line naming the problem (a missing role or database, a server
        # that is down), not a driver traceback.
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        typer.echo(f"keel: cannot use the database at {database.display_url}: {reason}", err=True)
        raise typer.Exit(code=1) from None
    finally:
        await database.dispose()


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default KEEL_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default KEEL_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default KEEL_WORKERS).")] = None,
) -> None:
    """Run the HTTP server. In development the schema is migrated first."""
    settings = _settings_or_exit()
    if settings.env is Environment.DEVELOPMENT:
        asyncio.run(_migrate(settings, "head"))
    options = uvicorn_options(settings)
    options.update({k: v for k, v in {"host": host, "port": port, "workers": workers}.items() if v is not None})
    uvicorn.run("keel.main:app_from_environment", factory=True, **options)


@app.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply database migrations up to REVISION (default: head)."""
    settings = _settings_or_exit()
    asyncio.run(_migrate(settings, revision))
    typer.echo(f"keel: database at {revision}")


@app.command("check-config")
def check_config() -> None:
    """Validate the configuration for its environment; exit 2 on any problem."""
    settings = _settings_or_exit()
    typer.echo(f"keel: configuration OK for {settings.env.value}")


@app.command()
def seed(
    tasks: Annotated[int, typer.Option(min=0, max=10_000_000, help="How many tasks to create.")] = 1_000,
    members: Annotated[int, typer.Option(min=1, max=100, help="How many demo users.")] = 5,
) -> None:
    """Create a demo organization with members, projects and TASKS tasks (not in production)."""
    settings = _settings_or_exit()
    if settings.env is Environment.PRODUCTION:
        typer.echo("keel: refusing to seed demo data in production", err=True)
        raise typer.Exit(code=2)
    started = time.perf_counter()
    seeded = asyncio.run(seed_demo(settings, tasks=tasks, members=members))
    typer.echo(f"keel: seeded org {seeded.org_id} with {seeded.tasks} tasks in {time.perf_counter() - started:.1f} s")
    for email, password in seeded.accounts:
        typer.echo(f"  {email}  {password}")


@app.command()
def worker() -> None:
    """Run the worker alone (outbox consumers, periodic jobs) until SIGTERM or
    SIGINT; set KEEL_WORKER_IN_PROCESS=false on the servers to leave it the work."""
    settings = _settings_or_exit()
    if settings.env is Environment.DEVELOPMENT:
        asyncio.run(_migrate(settings, "head"))
    # uvloop, as under `keel serve`: the worker's HTTP client and database
    # connections spend less time in the loop.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run_worker(settings))


if __name__ == "__main__":
    app()
