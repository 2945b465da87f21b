"""The keel command line, run as a newcomer would run it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from keel.core.db import Database
from keel.core.outbox import OutboxEvent, emit
from tests.fixtures.databases import database_settings, postgres_admin_url

KEEL = [sys.executable, "-m", "keel.cli"]


def run_keel(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
    return subprocess.run([*KEEL, *args], env={**clean, **env}, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_help_lists_commands(tmp_path: Path) -> None:
    result = run_keel("--help", env={}, cwd=tmp_path)
    assert result.returncode == 0
    for command in ("serve", "migrate", "check-config", "worker"):
        assert command in result.stdout


@pytest.mark.readiness("config.refuse_unsafe")
def test_check_config_names_every_problem_without_secrets(tmp_path: Path) -> None:
    env = {"KEEL_ENV": "production", "KEEL_SECRET_KEY": "tiny-secret-value", "KEEL_DEBUG": "true"}
    result = run_keel("check-config", env=env, cwd=tmp_path)
    assert result.returncode == 2
    assert "shorter than 32 bytes" in result.stderr
    assert "KEEL_DEBUG must be off" in result.stderr
    assert "KEEL_EXPOSE_DOCS" in result.stderr
    assert "KEEL_EXPOSE_METRICS" in result.stderr
    assert "tiny-secret-value" not in result.stderr + result.stdout


def test_serve_refuses_to_start_with_unsafe_production_config(tmp_path: Path) -> None:
    result = run_keel("serve", "--port", "1", env={"KEEL_ENV": "production"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "KEEL_SECRET_KEY is not set" in result.stderr


def test_check_config_accepts_a_complete_production_config(tmp_path: Path) -> None:
    env = {
        "KEEL_ENV": "production",
        "KEEL_SECRET_KEY": "p" * 40,
        "KEEL_EXPOSE_DOCS": "false",
        "KEEL_EXPOSE_METRICS": "true",
    }
    result = run_keel("check-config", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "configuration OK for production" in result.stdout


def test_invalid_value_is_a_clear_error(tmp_path: Path) -> None:
    result = run_keel("check-config", env={"KEEL_ENV": "prod"}, cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr
    assert "Traceback" not in result.stderr


def test_migrate_creates_the_schema(tmp_path: Path) -> None:
    database = tmp_path / "data" / "keel.db"
    env = {"KEEL_DATABASE_URL": f"sqlite:///{database}"}
    result = run_keel("migrate", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert database.exists()
    again = run_keel("migrate", env=env, cwd=tmp_path)
    assert again.returncode == 0


@pytest.mark.postgres
@pytest.mark.parametrize("command", [("migrate",), ("serve", "--port", "1")])
def test_a_missing_role_or_database_is_one_clear_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    admin = postgres_admin_url()
    assert admin is not None
    server = make_url(admin)
    for url, named in (
        (server.set(username="keel_no_such_role", database="postgres"), "keel_no_such_role"),
        (server.set(database="keel_no_such_database"), "keel_no_such_database"),
    ):
        env = {"KEEL_ENV": "development", "KEEL_DATABASE_URL": url.render_as_string(hide_password=False)}
        result = run_keel(*command, env=env, cwd=tmp_path)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("keel: cannot use the database at ")
        assert named in lines[0]
        assert "Traceback" not in result.stderr


@pytest.mark.sqlite
async def test_worker_consumes_committed_events_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'worker.db'}"
    env = {"KEEL_DATABASE_URL": database_url, "KEEL_WORKER_POLL_INTERVAL_S": "0.1"}
    assert run_keel("migrate", env=env, cwd=tmp_path).returncode == 0
    database = Database(database_settings(database_url))
    try:
        async with database.session(write=True) as session, session.begin():
            await emit(session, "test.cli.worker", {"n": 1})
        clean = {k: v for k, v in os.environ.items() if not k.startswith("KEEL_")}
        process = await asyncio.create_subprocess_exec(
            *KEEL, "worker", env={**clean, **env}, cwd=tmp_path, stderr=asyncio.subprocess.PIPE
        )
        try:
            processed = None
            for _ in range(300):
                async with database.session(write=False) as session:
                    processed = await session.scalar(
                        select(OutboxEvent.processed_at).where(OutboxEvent.event_type == "test.cli.worker")
                    )
                if processed is not None:
                    break
                await asyncio.sleep(0.1)
            assert processed is not None
            process.send_signal(signal.SIGTERM)
            _, err = await asyncio.wait_for(process.communicate(), 20)
        finally:
            if process.returncode is None:
                process.kill()
        stderr = err.decode()
        assert process.returncode == 0
        assert "keel.worker_running" in stderr
        assert "Traceback" not in stderr
    finally:
        await database.dispose()


def test_seed_creates_a_demo_org_and_refuses_production(tmp_path: Path) -> None:
    import sqlite3

    database = tmp_path / "seed.db"
    env = {
        "KEEL_DATABASE_URL": f"sqlite:///{database}",
        "KEEL_ARGON2_TIME_COST": "1",
        "KEEL_ARGON2_MEMORY_KIB": "1024",
    }
    assert run_keel("migrate", env=env, cwd=tmp_path).returncode == 0
    result = run_keel("seed", "--tasks", "1200", "--members", "3", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "with 1200 tasks" in result.stdout
    assert result.stdout.count("@example.com") == 3
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM tasks").fetchone() == (1200,)
        assert connection.execute("SELECT count(*) FROM memberships").fetchone() == (3 + 3,)  # + personal orgs
        assert connection.execute("SELECT count(*) FROM tasks_fts WHERE tasks_fts MATCH 'the'").fetchone()[0] > 0
    refused = run_keel(
        "seed",
        env={
            **env,
            "KEEL_ENV": "production",
            "KEEL_SECRET_KEY": "p" * 40,
            "KEEL_EXPOSE_DOCS": "false",
            "KEEL_EXPOSE_METRICS": "false",
            "KEEL_ARGON2_TIME_COST": "3",
            "KEEL_ARGON2_MEMORY_KIB": "65536",
        },
        cwd=tmp_path,
    )
    assert refused.returncode == 2
    assert "refusing to seed" in refused.stderr
