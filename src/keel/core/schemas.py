"""Base of every request body schema."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    field_validator,
    model_validator,
)


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple | set):
        return any(_contains_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_contains_nul(k) or _contains_nul(v) for k, v in value.items())
    return False


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:59-23:59 is past the last instant a datetime holds in UTC
        raise ValueError("is outside the range of instants keel can store") from None


_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def _iso_8601_only(example: str) -> Callable[[Any], Any]:
    """pydantic also reads numbers, and strings of digits, as Unix times; the
    schema says date or date-time, so only ISO 8601 text (or the value) is one."""

    def check(value: Any) -> Any:
        if isinstance(value, date):  # datetime is a date too
            return value
        if not isinstance(value, str) or _NUMBER.fullmatch(value.strip()):
            raise ValueError(f"must be in ISO 8601, like {example}")
        return value

    return check


IsoDate = Annotated[date, BeforeValidator(_iso_8601_only("2026-12-01"))]
"""An input calendar date, written in ISO 8601."""

UtcDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_8601_only("2026-12-01T12:00:00Z")), AfterValidator(_in_utc)]
"""An input instant in ISO 8601 with its zone required, kept in UTC: an
answer built from the values written then shows it as every read does; an
instant with no UTC equivalent (year 0 or 10000 once converted) is a 422."""


# What the NUL check refuses, stated in the schema: a string without NUL.
NO_NUL_PATTERN = "^[^\\u0000]*$"


def _declare_no_nul(node: Any) -> None:
    """Give every plain string in a JSON schema the NUL-free pattern."""
    if isinstance(node, dict):
        if node.get("type") == "string" and not {"pattern", "format", "enum", "const"} & node.keys():
            node["pattern"] = NO_NUL_PATTERN
        for value in node.values():
            _declare_no_nul(value)
    elif isinstance(node, list):
        for item in node:
            _declare_no_nul(item)


def _input_schema(schema: dict[str, Any], model: type[BaseModel]) -> None:
    _declare_no_nul(schema.get("properties", {}))
    for name in getattr(model, "non_null", ()):
        field = schema.get("properties", {}).get(name, {})
        options = [option for option in field.get("anyOf", ()) if option.get("type") != "null"]
        if options:  # may be left out, never null: the schema says so
            del field["anyOf"]
            field.pop("default", None)
            field.update(options[0] if len(options) == 1 else {"anyOf": options})


class InputModel(BaseModel):
    """Request bodies: unknown fields are refused, and so is NUL in any string
    (the schema declares both).

    PostgreSQL cannot store NUL in text; refusing it here makes it a 422 on
    every database instead of a 500 on one.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=_input_schema)

    @field_validator("*", mode="after")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        if _contains_nul(value):
            raise ValueError("must not contain NUL characters")
        return value


class PatchModel(InputModel):
    """PATCH bodies: only the fields sent change. Fields named in ``non_null``
    may be left out but not sent as null (null clears only nullable fields)."""

    non_null: ClassVar[tuple[str, ...]] = ()

    @model_validator(mode="after")
    def _refuse_clearing_required_fields(self) -> Self:
        for name in self.non_null:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self
