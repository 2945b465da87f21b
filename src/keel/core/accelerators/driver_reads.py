"""Accelerator: hot reads on PostgreSQL fetched by asyncpg directly.

What it replaces: SQLAlchemy's execution of a compiled SELECT (its execution
context, cursor adapter, result metadata and the greenlet hand-off around
each). What stays SQLAlchemy's: the statement, built and scoped as any other
and compiled by SQLAlchemy for the connection's dialect; the session's own
connection (``Connection.connection``), pool and settings; the
columns' bind and result processors, so rows hold the same values as
SQLAlchemy's; and the verdict on a failure: after an error from the driver,
a probe through SQLAlchemy on the same connection finds a lost connection as
SQLAlchemy would, drops it and every pooled connection older, and raises
SQLAlchemy's error.

Used only where the caller says so (``keel.core.db``: autocommit reads on
PostgreSQL, so no transaction is begun behind SQLAlchemy's back), and only
for a statement read at least twice: a statement is compiled once and its
compiled form kept (``_KEPT`` at most), so a statement built per request
stays on SQLAlchemy's path and its cache. Measured effect, and the A/B that
keeps it: docs/performance.md ("Accelerators").
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, exc, text
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler

# Statements kept compiled (and statements seen once, waiting for a second read).
_KEPT = 512
_PROBE = text("SELECT 1")


@dataclass(frozen=True)
class _CompiledRead:
    compiled: SQLCompiler
    names: tuple[str, ...]
    # (column name, processor) for each column whose values SQLAlchemy converts.
    converters: tuple[tuple[str, Callable[[Any], Any]], ...]
    # Each parameter's processor, by name, where its type converts (or checks) values.
    processors: dict[str, Callable[[Any], Any]]

    @classmethod
    def of(cls, statement: Select[Any], dialect: Dialect) -> _CompiledRead:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        converters = []
        for name, column in statement.selected_columns.items():
            convert = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if convert is not None:
                converters.append((name, convert))
        processors: dict[str, Callable[[Any], Any]] = {}
        for name, parameter in compiled.binds.items():
            process = parameter.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                processors[name] = process
        return cls(compiled, tuple(statement.selected_columns.keys()), tuple(converters), processors)

    def arguments(self, params: Mapping[str, Any]) -> tuple[str, list[Any]]:
        """The SQL to send and its positional arguments, bind processors applied."""
        state = self.compiled.construct_expanded_state(dict(params))
        # The expanded state holds only the processors of an expanding parameter's elements.
        processors = {**self.processors, **state.processors} if state.processors else self.processors
        values = [
            processors[name](value) if name in processors else value
            for name, value in zip(state.positiontup or (), state.positional_parameters, strict=True)
        ]
        return state.statement, values


class DriverReads:
    """Reads a process runs on the driver; one per database."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._kept: OrderedDict[Select[Any], _CompiledRead | None] = OrderedDict()

    def compiled(self, statement: Select[Any]) -> _CompiledRead | None:
        """The statement's compiled form, or None on its first read."""
        kept = self._kept
        if statement in kept:
            found = kept[statement]
            if found is None:
                found = kept[statement] = _CompiledRead.of(statement, self.dialect)
            kept.move_to_end(statement)
            return found
        kept[statement] = None
        if len(kept) > _KEPT:
            kept.popitem(last=False)
        return None

    async def rows(
        self, connection: AsyncConnection, read: _CompiledRead, params: Mapping[str, Any]
    ) -> list[dict[str, Any]]:
        """The statement's rows as dicts by column name, fetched on the
        connection's asyncpg connection."""
        sql, values = read.arguments(params)
        if connection.invalidated or connection.sync_connection is None:
            raw = await connection.get_raw_connection()  # reconnects, which is I/O
        else:
            # A connection in use is at hand without I/O: no greenlet hand-off.
            raw = connection.sync_connection.connection
        driver = raw.driver_connection
        assert driver is not None
        try:
            records = await driver.fetch(sql, *values)
        except Exception as error:
            # Raises SQLAlchemy's error if the connection is lost.
            await connection.execute(_PROBE)
            raise exc.DBAPIError.instance(sql, None, error, Exception) from error
        rows = [dict(zip(read.names, record, strict=True)) for record in records]
        for name, convert in read.converters:
            for row in rows:
                row[name] = convert(row[name])
        return rows
