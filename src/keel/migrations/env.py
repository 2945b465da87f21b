"""Alembic environment: runs on the connection keel hands over (see core.schema)."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context

from keel.core.models import UTCDateTime
from keel.core.schema import include_object
from keel.models_registry import metadata


def render_item(type_: str, item: Any, autogen_context: Any) -> str | Literal[False]:
    """Migrations use plain SQL types, never keel's Python-side type wrappers."""
    if type_ == "type" and isinstance(item, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `keel migrate`, which supplies the connection")

context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    render_item=render_item,
    include_object=include_object,
)
with context.begin_transaction():
    context.run_migrations()
