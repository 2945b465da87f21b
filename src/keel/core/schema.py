"""Alembic, driven from keel's own async engine (no alembic.ini needed)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from keel.core.fulltext import GENERATED_COLUMN

SCRIPT_LOCATION = "keel:migrations"


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    """What autogenerate compares: not the full-text machinery migrations add
    beside the models (FTS5 tables, tsvector columns and their indexes)."""
    if name is None:
        return True
    if type_ == "table" and "_fts" in name:
        return False
    return not (type_ in ("column", "index") and GENERATED_COLUMN in name)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(slug)s")
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    await _run(engine, lambda config: command.upgrade(config, revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await _run(engine, lambda config: command.downgrade(config, revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


async def _run(engine: AsyncEngine, operation: object) -> None:
    def run_with(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        operation(config)  # type: ignore[operator]

    async with engine.begin() as connection:
        await connection.run_sync(run_with)
