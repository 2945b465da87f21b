"""Columns read as the JSON a response shows them as, for hot read paths.

A page of fifty tasks reads 150 timestamps and 50 JSON label lists. Decoded
by the driver (asyncpg builds each timestamp through a ``timedelta``, and
each JSON value is parsed) only for orjson to write them out again, they were
about a sixth of a page's CPU on PostgreSQL. Read as text instead:

- on PostgreSQL a timestamp is selected as its JSON string, written by
  PostgreSQL itself (``to_char`` in UTC): exactly what
  :func:`keel.core.responses.render` writes for the decoded value, with no
  Python work per value (slicing PostgreSQL's own text into that string in
  Python cost the keel process more than twice what ``to_char`` costs the
  database); SQLite's stored text is parsed into a datetime as before (one
  C call);
- on PostgreSQL a UUID is selected as its canonical text: asyncpg's own
  UUID type is a subclass orjson hands back to Python, one call per value
  (SQLite's stored hex is read into a ``uuid.UUID``, which orjson writes
  natively);
- a JSON column's stored text (written by keel as compact JSON) is embedded
  in the response as it is, through ``orjson.Fragment``.

Such a value is for rendering only: code that computes with a row's
timestamp parses it back (``datetime.fromisoformat`` reads the ``Z``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Text, TypeDecorator, cast
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement, Label
from sqlalchemy.sql.visitors import InternalTraversal

from keel.core.models import UTCDateTime, UUIDColumn

# PostgreSQL writes the JSON string itself: six fraction digits, or none for
# a whole second (as orjson renders a datetime), in UTC whatever the session's zone.
_POSTGRES_JSON_TIMESTAMP = "replace(to_char(timezone('UTC', {}), 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), '.000000Z', 'Z')"


def _fragment(value: str | None) -> orjson.Fragment | None:
    return None if value is None else orjson.Fragment(value)


class RenderedTimestamp(TypeDecorator[str | datetime]):
    """A UTC timestamp column as selected by :func:`rendered_timestamp`: on
    PostgreSQL already its JSON string; on SQLite the stored text, parsed
    into a UTC datetime as everywhere else (one C call, which orjson renders
    natively, costs less than slicing the text in Python)."""

    impl = Text
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], str | datetime | None] | None:
        if dialect.name == "postgresql":
            return None
        return UTCDateTime().dialect_impl(dialect).result_processor(dialect, coltype)


class RenderedJson(TypeDecorator[orjson.Fragment]):
    """A JSON column read as its stored text, embedded verbatim when rendered."""

    impl = Text
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], orjson.Fragment | None]:
        return _fragment


class RenderedUuid(TypeDecorator[str | uuid.UUID]):
    """A UUID column as selected by :func:`rendered_uuid`: on PostgreSQL its
    canonical text (asyncpg's own UUID type is a subclass orjson hands back
    to Python, one call per value); on SQLite the stored hex, read into a
    UUID as everywhere else."""

    impl = Text
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], str | uuid.UUID | None] | None:
        if dialect.name == "postgresql":
            return None
        return UUIDColumn().dialect_impl(dialect).result_processor(dialect, coltype)


class _Rendered(ColumnElement[Any]):
    """A column selected as the text its response shows; each kind compiles
    per dialect below."""

    inherit_cache = True

    def __init__(self, column: ColumnElement[Any]) -> None:
        self.column = column

    @property
    def _from_objects(self) -> list[Any]:
        return self.column._from_objects

    def get_children(self, **kw: Any) -> tuple[ColumnElement[Any]]:
        return (self.column,)

    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]


class _TimestampText(_Rendered):
    """Its JSON string on PostgreSQL (see ``_POSTGRES_JSON_TIMESTAMP``), its stored text elsewhere."""

    inherit_cache = True
    type = RenderedTimestamp()


class _UuidText(_Rendered):
    """Its canonical text on PostgreSQL, the stored value elsewhere."""

    inherit_cache = True
    type = RenderedUuid()


@compiles(_TimestampText)
@compiles(_UuidText, "postgresql")
def _as_text(element: _Rendered, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(cast(element.column, Text), **kw)


@compiles(_TimestampText, "postgresql")
def _as_json_string(element: _Rendered, compiler: SQLCompiler, **kw: Any) -> str:
    return _POSTGRES_JSON_TIMESTAMP.format(compiler.process(element.column, **kw))


@compiles(_UuidText)
def _as_stored(element: _Rendered, compiler: SQLCompiler, **kw: Any) -> str:
    return compiler.process(element.column, **kw)


def rendered_timestamp(column: InstrumentedAttribute[Any]) -> Label[str | datetime]:
    """``column`` in a SELECT, read as the string a response shows, under its own name."""
    return _TimestampText(column.expression).label(column.key)


def rendered_uuid(column: InstrumentedAttribute[Any]) -> Label[str | uuid.UUID]:
    """``column`` (a UUID) in a SELECT, read as the string a response shows, under its own name."""
    return _UuidText(column.expression).label(column.key)


def rendered_json(column: InstrumentedAttribute[Any]) -> Label[orjson.Fragment]:
    """``column`` (JSON) in a SELECT, read as its stored text, under its own name."""
    return cast(column, RenderedJson()).label(column.key)
