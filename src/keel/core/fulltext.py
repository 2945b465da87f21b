"""Full-text search behind one interface: SQLite FTS5 on the embedded default,
a generated ``tsvector`` with a GIN index on PostgreSQL.

Both match whole words, case-insensitively, every word required. Migrations
create the index with :func:`create_index_sql`; repositories filter with
:func:`matches` and rank the newest matches with :func:`ranked`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

# Identifiers in this module's SQL are checked by _check against a plain
# pattern and never come from requests; values are always bound parameters.
# ruff: noqa: S608
from sqlalchemy import ColumnElement, Select, column, false, func, literal, literal_column, select, text
from sqlalchemy import table as table_clause

_WORD = re.compile(r"\w+", re.UNICODE)
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*$")
# Objects the search indexes add beside the models (autogenerate ignores them).
GENERATED_COLUMN = "search_vector"


def _check(*names: str) -> None:
    for name in names:
        if not _IDENTIFIER.fullmatch(name):
            raise ValueError(f"not a plain identifier: {name!r}")


def words(query: str) -> list[str]:
    return _WORD.findall(query)[:32]


def create_index_sql(dialect: str, table: str, columns: list[str]) -> list[str]:
    _check(table, *columns)
    if dialect == "postgresql":
        document = " || ' ' || ".join(f"coalesce({c}, '')" for c in columns)
        return [
            f"ALTER TABLE {table} ADD COLUMN {GENERATED_COLUMN} tsvector "
            f"GENERATED ALWAYS AS (to_tsvector('simple', {document})) STORED",
            f"CREATE INDEX ix_{table}_{GENERATED_COLUMN} ON {table} USING gin ({GENERATED_COLUMN})",
        ]
    fts, cols = f"{table}_fts", ", ".join(columns)
    new, old = ", ".join(f"new.{c}" for c in columns), ", ".join(f"old.{c}" for c in columns)
    # External-content FTS5 keyed by the table's rowid, kept in step by triggers.
    # VACUUM may renumber rowids of tables without an INTEGER PRIMARY KEY, so
    # anything that vacuums must run rebuild_index_sql afterwards.
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content='{table}', content_rowid='rowid')",
        f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN "
        f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.rowid, {new}); END",
        f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.rowid, {old}); END",
        f"CREATE TRIGGER {fts}_update AFTER UPDATE ON {table} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {cols}) VALUES ('delete', old.rowid, {old}); "
        f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.rowid, {new}); END",
        *rebuild_index_sql(dialect, table),
    ]


def rebuild_index_sql(dialect: str, table: str) -> list[str]:
    _check(table)
    return [] if dialect == "postgresql" else [f"INSERT INTO {table}_fts({table}_fts) VALUES ('rebuild')"]


def drop_index_sql(dialect: str, table: str) -> list[str]:
    _check(table)
    if dialect == "postgresql":
        return [f"DROP INDEX ix_{table}_{GENERATED_COLUMN}", f"ALTER TABLE {table} DROP COLUMN {GENERATED_COLUMN}"]
    fts = f"{table}_fts"
    return [*(f"DROP TRIGGER {fts}_{event}" for event in ("insert", "delete", "update")), f"DROP TABLE {fts}"]


def _sqlite_query(query: str) -> str:
    return " ".join('"' + word.replace('"', '""') + '"' for word in words(query))


def matches(dialect: str, table: str, query: str) -> ColumnElement[bool]:
    """A WHERE clause: rows of ``table`` containing every word of ``query``."""
    _check(table)
    if not words(query):
        return false()
    if dialect == "postgresql":
        tsvector: Any = literal_column(f"{table}.{GENERATED_COLUMN}")
        matched: ColumnElement[bool] = tsvector.op("@@")(func.plainto_tsquery("simple", " ".join(words(query))))
        return matched
    fts = f"{table}_fts"
    hits: Any = (
        select(literal_column("rowid"))
        .select_from(text(fts))
        .where(text(f"{fts} MATCH :fts_query").bindparams(fts_query=_sqlite_query(query)))
    )
    # The unary + keeps SQLite from driving the query by the matches' rowids
    # (SQLite's documented way to take a term out of index selection): it
    # reads the matches once into a set and walks the list's ordered index
    # until the page is full, so a common word costs a page, not a sort of
    # every match.
    return literal_column(f"+{table}.rowid").in_(hits)


def ranked(dialect: str, model: Any, columns: Sequence[ColumnElement[Any]], query: str, *, window: int) -> Select[Any]:
    """``columns`` of ``model``'s newest ``window`` rows containing every word
    of ``query``, with their relevance as ``rank`` (higher is better), ranked
    inside the full-text query itself: PostgreSQL's ``ts_rank`` on the indexed
    vector, SQLite's ``bm25()`` as FTS5 reads its matches.

    Only the window's rows are ranked, so a word in every row costs what a
    word in ``window`` rows costs: ranking is per row on both engines, and a
    common word otherwise ranks all of them to return a page. Filters added
    to the returned statement (the org, live rows) apply before the window.
    Newest is ``created_at`` on PostgreSQL (the lists' index) and the order
    rows were written on SQLite (FTS5 reads its matches in rowid order).
    """
    table_name = model.__tablename__
    _check(table_name)
    statement: Select[Any]
    if not words(query):
        nothing: list[Any] = [*columns, literal(0.0).label("rank")]
        statement = select(*nothing).select_from(model).where(false())
        return statement
    if dialect == "postgresql":
        vector: Any = literal_column(f"{table_name}.{GENERATED_COLUMN}")
        tsquery = func.plainto_tsquery("simple", " ".join(words(query)))
        selected: list[Any] = [*columns, func.ts_rank(vector, tsquery).label("rank")]
        statement = select(*selected).where(vector.op("@@")(tsquery)).order_by(model.created_at.desc())
        return statement.limit(window)
    fts_name = f"{table_name}_fts"
    fts = table_clause(fts_name, column("rowid"))
    selected = [*columns, (-func.bm25(literal_column(fts_name))).label("rank")]
    statement = (
        select(*selected)
        .select_from(fts.join(model, literal_column(f"{table_name}.rowid") == fts.c.rowid))
        .where(text(f"{fts_name} MATCH :fts_query").bindparams(fts_query=_sqlite_query(query)))
        .order_by(fts.c.rowid.desc())
    )
    return statement.limit(window)


def add_indexes(op: Any, searchable: dict[str, list[str]]) -> None:
    """For migrations: full-text indexes on ``{table: [columns]}``, for the
    database the migration runs on (``op`` is alembic's)."""
    dialect = op.get_bind().dialect.name
    for table, columns in searchable.items():
        for statement in create_index_sql(dialect, table, columns):
            op.execute(statement)


def remove_indexes(op: Any, tables: Iterable[str]) -> None:
    dialect = op.get_bind().dialect.name
    for table in tables:
        for statement in drop_index_sql(dialect, table):
            op.execute(statement)
