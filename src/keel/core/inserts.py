"""Rows written with Core INSERTs, their Python-side defaults filled in first.

A created resource's response and its outbox event are built from the row as
written: completing the values with the columns' defaults up front makes
that row known without reading it back or building an ORM instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncSession

RowToInsert = tuple[Table, Mapping[str, Any]]


def with_defaults(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` completed with the Python-side defaults of ``table``'s other
    columns; columns with neither are left to the database."""
    complete = dict(values)
    for column in table.columns:
        default = column.default
        if column.key in complete or default is None:
            continue
        complete[column.key] = default.arg(None) if default.is_callable else default.arg  # type: ignore[attr-defined]
    return complete


async def insert_rows(session: AsyncSession, *rows: RowToInsert) -> None:
    """Write complete rows (see :func:`with_defaults`) in the session's transaction, in order."""
    connection = await session.connection()
    for table, row in rows:
        await connection.execute(insert(table), row)
