"""Hot statements compiled once and run by the database driver itself.

Around a short statement, SQLAlchemy's execution path (a greenlet per call,
the compiled-statement cache, the DBAPI adapter's cursor, the result object)
costs more CPU than the driver's own work: a loaded task GET on PostgreSQL
served about a fifth more requests per second without it. A prepared
statement is compiled once per dialect; the SQL and positional arguments go
straight to the driver, with the same bind and result processors SQLAlchemy
would apply, so the same values are written and read:

- Both: in a read session (autocommit, ``keel.core.db.ReadSession``) a
  :class:`PreparedRead` borrows a pooled connection for its statement alone,
  unless the session already holds one.
- PostgreSQL: asyncpg. A :class:`PreparedRead` runs there on a connection in
  autocommit (reads; see ``keel.core.db``) and inside a session's
  transaction, which it begins through SQLAlchemy's adapter when it is the
  transaction's first statement (the adapter otherwise begins it lazily, on
  the first statement SQLAlchemy runs; a write request's first statement is
  its caller's locked row). A :class:`PreparedInsert` runs there inside a
  transaction that has begun and through SQLAlchemy otherwise.
- SQLite: ``sqlite3`` on the loop's thread (see ``keel.core.sqlite_driver``),
  inside the session's transaction, which keel's begin hook has opened by
  the time the session hands out its connection (a read session's
  statements run in autocommit, as on PostgreSQL).

A statement SQLAlchemy must rewrite per call (expanding ``IN`` lists) always
goes through SQLAlchemy. Errors: a read that failed on the driver outside a
transaction, and a statement that failed on SQLite (which undoes only the
failed statement), are run once more through SQLAlchemy, which reports the
error and invalidates a broken connection exactly as everywhere else (a read
that hits PostgreSQL's statement timeout therefore fails after twice the
timeout). A failed statement in a PostgreSQL transaction has aborted it, so
it cannot be run again: a constraint violation on insert is raised as
SQLAlchemy's ``IntegrityError`` (what callers catch to answer 409), anything
else as the driver raised it, and the transaction's rollback, through
SQLAlchemy, deals with the connection.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy import Insert, Select, Table, insert
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.util import greenlet_spawn

from keel.core.db import ReadSession
from keel.core.sqlite_driver import InlineSQLiteDialect

SQLITE_DRIVER = InlineSQLiteDialect.driver

Processor = Callable[[Any], Any]
_DRIVERS = frozenset({"asyncpg", SQLITE_DRIVER})
# Distinct column sets an insert keeps a compiled form for: callers insert
# one or two shapes each; more means the keys vary per call (not cached).
_INSERT_SHAPES = 16


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


def _driver_form(
    statement: Select[Any] | Insert, dialect: Dialect, column_keys: Sequence[str] | None = None
) -> _DriverForm | None:
    """The statement for its driver, or None where only SQLAlchemy can run it."""
    if dialect.driver not in _DRIVERS:
        return None
    compiled = statement.compile(dialect=dialect, column_keys=column_keys)
    if compiled.positiontup is None or compiled.post_compile_params or compiled.literal_execute_params:
        return None
    binds = compiled.binds
    bind_processors = {}
    for name in compiled.positiontup:
        process = binds[name].type.dialect_impl(dialect).bind_processor(dialect)
        if process is not None:
            bind_processors[name] = process
    result_processors = []
    if isinstance(statement, Select):
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
        if isinstance(session, ReadSession) and not session.in_transaction():
            borrowed = await self._on_a_pooled_connection(session, params)
            if borrowed is not None:
                return borrowed
        connection = await session.connection()
        form = self._form(connection.dialect)
        if form is not None:
            records = await _read_on_driver(connection, form, params)
            if records is not None:
                return form.rows(records)
        rows: Sequence[Sequence[Any]] = (await connection.execute(self.statement, params)).all()
        return rows

    async def _on_a_pooled_connection(
        self, session: ReadSession, params: Mapping[str, Any]
    ) -> Sequence[Sequence[Any]] | None:
        """A read session's statement, run on a connection borrowed from the
        pool for just this statement: in autocommit each statement is its own
        snapshot whichever connection runs it, and the session's own
        connection, transaction and close (SQLAlchemy's bookkeeping, about a
        tenth of a task read on PostgreSQL) are skipped. Only while the
        session holds no connection, so a request never holds two. None where
        SQLAlchemy must run it (no driver form; the driver failed)."""
        engine = session.engine
        form = self._form(engine.dialect)
        if form is None:
            return None
        pooled = await greenlet_spawn(engine.sync_engine.pool.connect)
        driver: Any = pooled.driver_connection
        try:
            records = await _fetch(driver, form, params)
        except Exception:  # run again through SQLAlchemy, which reports the error and handles the connection
            if not form.inline and driver.is_closed():
                pooled.invalidate()
            return None
        finally:
            await greenlet_spawn(pooled.close)  # back to the pool (closing an invalidated one is a no-op)
        return form.rows(records)

    async def first(self, session: AsyncSession, params: Mapping[str, Any]) -> Sequence[Any] | None:
        rows = await self.all(session, params)
        return rows[0] if rows else None


async def _read_on_driver(
    connection: AsyncConnection, form: _DriverForm, params: Mapping[str, Any]
) -> Sequence[Any] | None:
    """The driver's rows, or None when SQLAlchemy must run the read instead."""
    pooled = await connection.get_raw_connection()
    driver: Any = pooled.driver_connection
    adapter: Any = pooled.dbapi_connection
    if form.inline or adapter.autocommit:
        try:
            return await _fetch(driver, form, params)
        except Exception:  # run again through SQLAlchemy, which reports the error
            return None
    if not await _begin(adapter):
        return None
    # A failed statement has aborted the transaction, so nothing can run it
    # again: the driver's error stands, and the rollback deals with the connection.
    return await _fetch(driver, form, params)


async def _fetch(driver: Any, form: _DriverForm, params: Mapping[str, Any]) -> Sequence[Any]:
    """The statement's records from the driver: sqlite3 inline, or asyncpg."""
    if form.inline:
        rows: Sequence[Any] = driver.execute(form.sql, form.arguments(params)).fetchall()
        return rows
    records: Sequence[Any] = await driver.fetch(form.sql, *form.arguments(params))
    return records


async def _begin(adapter: Any) -> bool:
    """Whether the session's PostgreSQL transaction has begun, beginning it if
    this is its first statement: the same BEGIN (isolation level included)
    through the SQLAlchemy adapter's own transaction, which its later
    statements, commit and rollback then use. False where the adapter offers
    no way to (SQLAlchemy then runs the statement and begins it itself)."""
    if getattr(adapter, "_transaction", None) is not None:
        return True
    start = getattr(adapter, "_start_transaction", None)
    if start is None:
        return False
    try:
        await start()
    except Exception:  # SQLAlchemy begins again, and reports and invalidates as usual
        return False
    return getattr(adapter, "_transaction", None) is not None


def with_defaults(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` completed with the Python-side defaults of ``table``'s other columns."""
    complete = dict(values)
    for column in table.columns:
        default = column.default
        if column.key in complete or default is None:
            continue
        complete[column.key] = default.arg(None) if default.is_callable else default.arg  # type: ignore[attr-defined]
    return complete


class PreparedInsert:
    """A one-row INSERT into ``model``'s table for hot write paths, in the session's
    transaction. The caller's values are completed with the columns'
    Python-side defaults up front, so the row as written is known without
    reading it back; columns with neither are left to the database."""

    def __init__(self, model: type[DeclarativeBase]) -> None:
        table = model.__table__
        assert isinstance(table, Table)
        self.table = table
        self.statement = insert(table)
        self._forms: dict[tuple[str, tuple[str, ...]], _DriverForm | None] = {}

    def _form(self, dialect: Dialect, keys: tuple[str, ...]) -> _DriverForm | None:
        shape = (dialect.driver, keys)
        try:
            return self._forms[shape]
        except KeyError:
            form = _driver_form(self.statement, dialect, keys)
            if len(self._forms) < _INSERT_SHAPES:
                self._forms[shape] = form
            return form

    def row(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The row ``values`` make, defaults included: what :meth:`insert` writes."""
        return with_defaults(self.table, values)

    async def insert(self, session: AsyncSession, values: Mapping[str, Any]) -> dict[str, Any]:
        """Write one row; the values written, defaults included."""
        row = self.row(values)
        await insert_rows(session, (self, row))
        return row


RowToInsert = tuple[PreparedInsert, Mapping[str, Any]]


async def insert_rows(session: AsyncSession, *rows: RowToInsert) -> None:
    """Write complete rows (see :meth:`PreparedInsert.row`) in the session's
    transaction: on PostgreSQL in one statement, each INSERT but the last
    in a data-modifying ``WITH`` (one round trip instead of one per row;
    a change and its outbox event are written this way); elsewhere, and
    where the driver cannot take them, one after another."""
    connection = await session.connection()
    forms = [prepared._form(connection.dialect, tuple(values)) for prepared, values in rows]
    on_driver = [form for form in forms if form is not None]
    if len(rows) > 1 and len(on_driver) == len(rows) and not on_driver[0].inline:
        sql = _one_statement(tuple(form.sql for form in on_driver))
        arguments = [value for form, (_, row) in zip(on_driver, rows, strict=True) for value in form.arguments(row)]
        if await _write_on_driver(connection, sql, arguments, inline=False):
            return
    for form, (prepared, row) in zip(forms, rows, strict=True):
        if form is None or not await _write_on_driver(connection, form.sql, form.arguments(row), inline=form.inline):
            await connection.execute(prepared.statement, row)


@functools.lru_cache(maxsize=64)
def _one_statement(statements: tuple[str, ...]) -> str:
    """asyncpg INSERTs as one: ``WITH w1 AS (first), ... last``, each one's
    ``$n`` placeholders numbered on from the previous ones' (compiled
    INSERTs carry every value as a parameter, so ``$`` is nothing else)."""
    parts: list[str] = []
    offset = 0
    for sql in statements:
        parts.append(_placeholders_from(sql, offset))
        offset += len(set(_PLACEHOLDER.findall(sql)))
    written = ", ".join(f"w{number} AS ({sql})" for number, sql in enumerate(parts[:-1], 1))
    return f"WITH {written} {parts[-1]}"


_PLACEHOLDER = re.compile(r"\$(\d+)")


def _placeholders_from(sql: str, offset: int) -> str:
    return _PLACEHOLDER.sub(lambda match: f"${int(match[1]) + offset}", sql)


async def _write_on_driver(connection: AsyncConnection, sql: str, arguments: Sequence[Any], *, inline: bool) -> bool:
    """Whether the driver wrote; False when SQLAlchemy must run the statement."""
    pooled = await connection.get_raw_connection()
    driver: Any = pooled.driver_connection
    if inline:
        try:
            driver.execute(sql, arguments)
        except Exception:  # SQLite undid just this statement: SQLAlchemy runs it again and reports the error
            return False
        return True
    if not driver.is_in_transaction():
        return False  # the adapter begins the transaction on first use
    try:
        await driver.execute(sql, *arguments)
    except asyncpg.IntegrityConstraintViolationError as error:
        raise IntegrityError(sql, arguments, error) from error
    return True
