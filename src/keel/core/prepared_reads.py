"""Hot reads compiled once and run by the database driver itself.

Around a short read, SQLAlchemy's execution path (a greenlet per call, the
compiled-statement cache, the DBAPI adapter's cursor, the result object)
costs more CPU than the driver's own work: a loaded task GET on PostgreSQL
served about a fifth more requests per second without it. A
:class:`PreparedRead` compiles its SELECT once per dialect and hands the SQL
and positional arguments straight to the driver, applying the same bind and
result processors SQLAlchemy would, so rows come back with the same values:

- PostgreSQL: asyncpg, on a connection in autocommit (reads; see
  ``keel.core.db``). Inside a transaction the read goes through SQLAlchemy,
  whose adapter begins the transaction on first use.
- SQLite: ``sqlite3`` on the loop's thread (see ``keel.core.sqlite_driver``),
  inside the session's transaction, which keel's begin hook has opened by
  the time the session hands out its connection.

A statement SQLAlchemy must rewrite per call (expanding ``IN`` lists) always
goes through SQLAlchemy; so does a read after any driver error — it is run
once more there, which translates the error and invalidates a broken
connection exactly as everywhere else (a read that hits PostgreSQL's
statement timeout therefore fails after twice the timeout).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from keel.core.sqlite_driver import InlineSQLiteDialect

SQLITE_DRIVER = InlineSQLiteDialect.driver

Processor = Callable[[Any], Any]
_DRIVERS = frozenset({"asyncpg", SQLITE_DRIVER})


@dataclass(frozen=True, slots=True)
class _DriverForm:
    """A statement as the driver takes it (SQL with ``$n`` placeholders for
    asyncpg, ``?`` for sqlite3), and how to turn named parameters into its
    arguments and its records into rows."""

    sql: str
    inline: bool  # sqlite3 on the loop's thread, rather than asyncpg
    names: tuple[str, ...]
    defaults: Mapping[str, Any]
    bind_processors: Mapping[str, Processor]
    result_processors: tuple[tuple[int, Processor], ...]

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        arguments = []
        for name in self.names:
            value = params[name] if name in params else self.defaults[name]
            process = self.bind_processors.get(name)
            arguments.append(value if process is None else process(value))
        return arguments

    def rows(self, records: Sequence[Any]) -> list[Sequence[Any]]:
        if not self.result_processors:
            return list(records)
        rows: list[Sequence[Any]] = []
        for record in records:
            row = list(record)
            for index, process in self.result_processors:
                row[index] = process(row[index])
            rows.append(row)
        return rows


def _driver_form(statement: Select[Any], dialect: Dialect) -> _DriverForm | None:
    """The statement for its driver, or None where only SQLAlchemy can run it."""
    if dialect.driver not in _DRIVERS:
        return None
    compiled = statement.compile(dialect=dialect)
    if compiled.positiontup is None or compiled.post_compile_params or compiled.literal_execute_params:
        return None
    binds = compiled.binds
    bind_processors = {}
    for name in compiled.positiontup:
        process = binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            bind_processors[name] = process
    result_processors = []
    for index, column in enumerate(statement.selected_columns):
        process = column.type.dialect_impl(dialect).result_processor(dialect, None)
        if process is not None:
            result_processors.append((index, process))
    defaults = {name: bind.value for name, bind in binds.items() if not bind.required}
    return _DriverForm(
        str(compiled),
        dialect.driver == SQLITE_DRIVER,
        tuple(compiled.positiontup),
        defaults,
        bind_processors,
        tuple(result_processors),
    )


class PreparedRead:
    """A column SELECT built once (at import, or cached), for hot read paths.

    Rows are plain sequences in the statement's column order.
    """

    def __init__(self, statement: Select[Any]) -> None:
        self.statement = statement
        self._forms: dict[str, _DriverForm | None] = {}

    def _form(self, dialect: Dialect) -> _DriverForm | None:
        # By driver name alone: each driver with a form serves one database.
        try:
            return self._forms[dialect.driver]
        except KeyError:
            form = self._forms[dialect.driver] = _driver_form(self.statement, dialect)
            return form

    async def all(self, session: AsyncSession, params: Mapping[str, Any]) -> Sequence[Sequence[Any]]:
        connection = await session.connection()
        form = self._form(connection.dialect)
        if form is not None:
            records = await _on_driver(connection, form, params)
            if records is not None:
                return form.rows(records)
        rows: Sequence[Sequence[Any]] = (await connection.execute(self.statement, params)).all()
        return rows

    async def first(self, session: AsyncSession, params: Mapping[str, Any]) -> Sequence[Any] | None:
        rows = await self.all(session, params)
        return rows[0] if rows else None


async def _on_driver(connection: AsyncConnection, form: _DriverForm, params: Mapping[str, Any]) -> Sequence[Any] | None:
    """The driver's rows, or None when SQLAlchemy must run the read instead."""
    pooled = await connection.get_raw_connection()
    driver: Any = pooled.driver_connection
    try:
        if form.inline:
            rows: Sequence[Any] = driver.execute(form.sql, form.arguments(params)).fetchall()
            return rows
        if not pooled.dbapi_connection.autocommit:  # type: ignore[union-attr]
            return None  # in a transaction, which the adapter begins on first use
        records: Sequence[Any] = await driver.fetch(form.sql, *form.arguments(params))
    except Exception:  # the read is run again through SQLAlchemy, which reports the error
        return None
    return records
