"""Base of every request body schema."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Self

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, field_validator, model_validator


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


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]
"""An input instant with its zone required, kept in UTC: an answer built
from the values written then shows it as every read does; an instant with
no UTC equivalent (year 0 or 10000 once converted) is a 422."""


class InputModel(BaseModel):
    """Request bodies: unknown fields are refused, and so is NUL in any string.

    PostgreSQL cannot store NUL in text; refusing it here makes it a 422 on
    every database instead of a 500 on one.
    """

    model_config = ConfigDict(extra="forbid")

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
