"""Keyset pagination with opaque, signed cursors.

A cursor carries the sort it was issued for and the sort-key values of the
last row served, signed with the app's secret: a tampered cursor, or one
replayed against another sort, is a 400 problem, never a wrong page.
Ordering always ends with the id, so rows with equal keys never swap places.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy import Integer, Select, bindparam, literal_column, tuple_
from sqlalchemy.orm import InstrumentedAttribute

from keel.core.errors import BadRequest
from keel.core.platform import request_platform

ItemT = TypeVar("ItemT")
RowT = TypeVar("RowT")
StatementT = TypeVar("StatementT", bound=Select)  # type: ignore[type-arg]
DEFAULT_LIMIT = 50
MAX_LIMIT = 200
_SIGNATURE_BYTES = 16


class Page(BaseModel, Generic[ItemT]):
    """One page of a list; ``next_cursor`` is null on the last page."""

    # Each parametrized page (Page[TaskRead], ...) is a schema of its own, without the class docstring.
    model_config = ConfigDict(
        json_schema_extra={"description": "One page of a list; `next_cursor` is null on the last page."}
    )

    items: list[ItemT]
    next_cursor: str | None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(type(value).__name__)


class CursorCodec:
    def __init__(self, key: SecretStr) -> None:
        self._key = hashlib.sha256(b"keel-cursor:" + key.get_secret_value().encode()).digest()

    def _sign(self, payload: bytes) -> bytes:
        return hmac.new(self._key, payload, hashlib.sha256).digest()[:_SIGNATURE_BYTES]

    def encode(self, sort: str, values: Sequence[Any]) -> str:
        payload = orjson.dumps({"s": sort, "v": list(values)}, default=_json_default)
        return f"{_b64(payload)}.{_b64(self._sign(payload))}"

    def decode(self, cursor: str, sort: str) -> list[Any]:
        """The raw key values (strings for datetimes and ids); 400 if not ours."""
        try:
            payload_text, signature_text = cursor.split(".", 1)
            payload = _unb64(payload_text)
        except (ValueError, binascii.Error):
            raise BadRequest("The cursor is malformed.") from None
        # Compared as text: base64 ignores a final character's spare bits, so
        # comparing decoded bytes would accept several spellings of one signature.
        if not hmac.compare_digest(signature_text.encode(), _b64(self._sign(payload)).encode()):
            raise BadRequest("The cursor is invalid.")
        data = orjson.loads(payload)
        if data.get("s") != sort:
            raise BadRequest("The cursor was issued for a different sort order.")
        values = data.get("v")
        if not isinstance(values, list):
            raise BadRequest("The cursor is invalid.")
        return values


def _start_param(position: int) -> str:
    return f"keyset_after_{position}"


def _keyset(statement: StatementT, keys: Sequence[Any], *, descending: bool, after: bool) -> StatementT:
    if after:
        row = tuple_(*keys)
        bound = tuple_(*(bindparam(_start_param(i), type_=key.type, required=True) for i, key in enumerate(keys)))
        statement = statement.where(row < bound if descending else row > bound)
    order = [key.desc() if descending else key.asc() for key in keys]
    return statement.order_by(*order)


@dataclass(frozen=True, slots=True)
class KeysetQuery(Generic[StatementT]):
    """A list's statements, built once: ordered by ``keys`` (the last must be
    unique), for the first page and for a page after a cursor, with the start
    left as parameters. Building a statement costs more than running a short
    read, so hot lists build theirs at import.

    The page size is written into the SQL, one statement per size (at most
    ``MAX_LIMIT`` of each kind): PostgreSQL plans a prepared statement once
    for any parameter values (see ``keel.core.db``), and a ``LIMIT $n`` it
    plans for as a tenth of the rows, a plan made for thousands of rows
    rather than the page's fifty."""

    keys: tuple[Any, ...]
    first: StatementT
    later: StatementT
    _sized: dict[tuple[bool, int], StatementT] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(
        cls, statement: StatementT, keys: Sequence[InstrumentedAttribute[Any]], *, descending: bool
    ) -> KeysetQuery[StatementT]:
        return cls(
            tuple(keys),
            _keyset(statement, keys, descending=descending, after=False),
            _keyset(statement, keys, descending=descending, after=True),
        )

    def page(self, after: Sequence[Any] | None, limit: int) -> tuple[StatementT, dict[str, Any]]:
        """The statement for the page after ``after`` and its parameters; it
        fetches ``limit + 1`` rows so the caller knows whether more follow."""
        statement = self._statement(after is not None, limit)
        params: dict[str, Any] = {}
        if after is None:
            return statement, params
        if len(after) != len(self.keys):
            raise BadRequest("The cursor is invalid.")
        for position, (key, value) in enumerate(zip(self.keys, after, strict=True)):
            params[_start_param(position)] = _typed(key, value)
        return statement, params

    def _statement(self, later: bool, limit: int) -> StatementT:
        try:
            return self._sized[later, limit]
        except KeyError:
            pass
        if not (isinstance(limit, int) and 1 <= limit <= MAX_LIMIT):
            raise ValueError(f"page size out of range: {limit!r}")
        ordered = self.later if later else self.first
        statement = self._sized[later, limit] = ordered.limit(literal_column(str(limit + 1), Integer()))
        return statement


def _typed(key: InstrumentedAttribute[Any], value: Any) -> Any:
    """Cursor values travel as JSON; turn them back into the column's type."""
    python_type = key.type.python_type
    try:
        if python_type is datetime and isinstance(value, str):
            return datetime.fromisoformat(value)
        if python_type is uuid.UUID and isinstance(value, str):
            return uuid.UUID(value)
    except ValueError:
        raise BadRequest("The cursor is invalid.") from None
    if not isinstance(value, python_type):
        raise BadRequest("The cursor is invalid.")
    return value


async def paged(
    codec: CursorCodec,
    sort: str,
    cursor: str | None,
    limit: int,
    fetch: Callable[[list[Any] | None], Awaitable[Sequence[RowT]]],
    key: Callable[[RowT], list[Any]],
) -> tuple[list[RowT], str | None]:
    """One page: decode the cursor, fetch ``limit + 1`` rows after it, encode the next."""
    after = codec.decode(cursor, sort) if cursor else None
    rows, more = page_of(await fetch(after), limit)
    return rows, codec.encode(sort, key(rows[-1])) if more else None


def page_of(rows: Sequence[ItemT], limit: int) -> tuple[list[ItemT], bool]:
    """The rows to serve, and whether more follow."""
    return list(rows[:limit]), len(rows) > limit


async def cursor_codec(request: Request) -> CursorCodec:
    return request_platform(request).cursors


Cursors = Annotated[CursorCodec, Depends(cursor_codec)]
_CURSOR_MAX_LENGTH = 1024
_CURSOR_ABOUT = "next_cursor of the previous page."
_LIMIT_ABOUT = f"Page size (max {MAX_LIMIT})."
# A cursor's shape (payload.signature, base64url; empty means the first page);
# its signature only keel can make.
_CURSOR_PATTERN = r"^([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)?$"
CursorParam = Annotated[
    str | None,
    Query(max_length=_CURSOR_MAX_LENGTH, description=_CURSOR_ABOUT, json_schema_extra={"pattern": _CURSOR_PATTERN}),
]
LimitParam = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=_LIMIT_ABOUT)]


class PageQuery(BaseModel):
    """``cursor`` and ``limit``, for a route whose query parameters are one
    model (``Annotated[ListQuery, Query()]``); any other parameter is a 422."""

    model_config = ConfigDict(extra="forbid")

    cursor: str | None = Field(
        None, max_length=_CURSOR_MAX_LENGTH, description=_CURSOR_ABOUT, json_schema_extra={"pattern": _CURSOR_PATTERN}
    )
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=_LIMIT_ABOUT)
