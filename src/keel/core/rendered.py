"""Columns read as the JSON a response shows them as, for hot read paths.

A page of fifty tasks reads 150 timestamps and 50 JSON label lists. Decoded
by the driver (asyncpg builds each timestamp through a ``timedelta``, and
each JSON value is parsed) only for orjson to write them out again, they were
about a sixth of a page's CPU on PostgreSQL. Read as text instead:

- on PostgreSQL a timestamp's text becomes its JSON string with a few
  slices (PostgreSQL prints it in the session's zone, which ``keel.core.db``
  sets to UTC, and in ISO style); any other spelling is parsed and rendered
  the general way, so the string is always exactly what
  :func:`keel.core.responses.render` writes for the decoded value (SQLite's
  stored text is parsed into a datetime as before: one C call);
- a JSON column's stored text (written by keel as compact JSON) is embedded
  in the response as it is, through ``orjson.Fragment``.

Such a value is for rendering only: code that computes with a row's
timestamp parses it back (``datetime.fromisoformat`` reads the ``Z``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Text, TypeDecorator, cast
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.elements import Label

from keel.core.models import UTCDateTime
from keel.core.responses import render

# PostgreSQL's text of a timestamptz in UTC: "2026-12-02 02:23:32.742308+00",
# its fraction's trailing zeros trimmed ("...32.7423+00"), none for a whole
# second ("...32+00"). JSON shows six digits, or none for a whole second: the
# zeros to put back, by the text's length.
_POSTGRES_PADDING = {22: "", 24: "00000", 25: "0000", 26: "000", 27: "00", 28: "0", 29: ""}


def _timestamp_from_postgres(value: str | None) -> str | None:
    if value is None:
        return None
    padding = _POSTGRES_PADDING.get(len(value))
    if padding is not None and value.endswith("+00") and value[4] == "-":  # a four-digit year, in UTC
        return value[:10] + "T" + value[11:-3] + padding + "Z"
    # A timestamptz's text always carries its offset.
    return render(datetime.fromisoformat(value).astimezone(UTC))[1:-1].decode()


def _fragment(value: str | None) -> orjson.Fragment | None:
    return None if value is None else orjson.Fragment(value)


class RenderedTimestamp(TypeDecorator[str | datetime]):
    """A UTC timestamp column, read on PostgreSQL as its JSON string (see the
    module). On SQLite the stored text is parsed into a UTC datetime as
    everywhere else: one C call, which orjson renders natively, costs less
    than slicing the text in Python."""

    impl = Text
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], str | datetime | None] | None:
        if dialect.name == "postgresql":
            return _timestamp_from_postgres
        return UTCDateTime().dialect_impl(dialect).result_processor(dialect, coltype)


class RenderedJson(TypeDecorator[orjson.Fragment]):
    """A JSON column read as its stored text, embedded verbatim when rendered."""

    impl = Text
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Callable[[Any], orjson.Fragment | None]:
        return _fragment


def rendered_timestamp(column: InstrumentedAttribute[Any]) -> Label[str | datetime]:
    """``column`` in a SELECT, read as the string a response shows, under its own name."""
    return cast(column, RenderedTimestamp()).label(column.key)


def rendered_json(column: InstrumentedAttribute[Any]) -> Label[orjson.Fragment]:
    """``column`` (JSON) in a SELECT, read as its stored text, under its own name."""
    return cast(column, RenderedJson()).label(column.key)
