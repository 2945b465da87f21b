"""Every migration is reversible, and the models match what migrations build."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from keel.core import schema
from keel.core.db import Database
from keel.models_registry import metadata
from tests.fixtures.databases import database_settings, fresh_database_url


async def _tables(database: Database) -> set[str]:
    async with database.engine.connect() as connection:
        names = set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        return {name for name in names - {"alembic_version"} if "_fts" not in name}


async def _model_drift(database: Database) -> list[object]:
    async with database.engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"include_object": schema.include_object}), metadata
            )
        )


@pytest.mark.readiness("db.migrations_reversible")
def test_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    async def cycle(url: str) -> None:
        database = Database(database_settings(url))
        try:
            await schema.upgrade(database.engine)
            assert await schema.current_revision(database.engine) == schema.head_revision()
            assert await _tables(database) == set(metadata.tables)
            assert await _model_drift(database) == []

            await schema.downgrade(database.engine, "base")
            assert await schema.current_revision(database.engine) is None
            assert await _tables(database) == set()

            await schema.upgrade(database.engine)
            assert await schema.current_revision(database.engine) == schema.head_revision()
            assert await _model_drift(database) == []
        finally:
            await database.dispose()

    with fresh_database_url(tmp_path) as url:
        asyncio.run(cycle(url))


def test_revision_files_are_named_by_date_and_slug() -> None:
    versions = Path(schema.__file__).parent.parent / "migrations" / "versions"
    names = [path.name for path in versions.glob("*.py")]
    assert names, "no migrations found"
    assert all(name[:8].isdigit() and name[8] == "_" for name in names)
