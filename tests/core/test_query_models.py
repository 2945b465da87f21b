"""Query parameters read as one model: the same values, errors and docs as
parameters declared one by one."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Literal

import pytest
from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from keel.core.query_models import QueryModel


class Colour(StrEnum):
    RED = "red"
    BLUE = "blue"


class Filters(BaseModel):
    colour: list[Colour] | None = Field(None, max_length=2)
    owner_id: uuid.UUID | None = Field(None, description="Whose rows.")
    order: Literal["name", "-name"] = "name"
    limit: int = Field(10, ge=1, le=50)


FILTERS = QueryModel(Filters)


def _request(query: str) -> Request:
    return Request({"type": "http", "query_string": query.encode(), "headers": []})


async def test_values_are_typed_repeatable_fields_collect_and_others_take_the_last() -> None:
    owner = uuid.uuid4()
    read = await FILTERS(_request(f"colour=red&colour=blue&owner_id={owner}&limit=5&limit=7"))
    assert read == Filters(colour=[Colour.RED, Colour.BLUE], owner_id=owner, order="name", limit=7)
    assert await FILTERS(_request("")) == Filters()


@pytest.mark.parametrize(
    ("query", "location"),
    [
        ("limit=0", ("query", "limit")),
        ("limit=many", ("query", "limit")),
        ("colour=green", ("query", "colour", 0)),
        ("colour=red&colour=red&colour=blue", ("query", "colour")),
        ("owner_id=1%20OR%201%3D1", ("query", "owner_id")),
        ("order=password", ("query", "order")),
    ],
)
async def test_a_bad_value_is_fastapis_validation_error_located_in_the_query(
    query: str, location: tuple[object, ...]
) -> None:
    with pytest.raises(RequestValidationError) as raised:
        await FILTERS(_request(query))
    assert [tuple(error["loc"]) for error in raised.value.errors()] == [location]


def test_each_field_is_documented_as_a_query_parameter() -> None:
    documented = {parameter["name"]: parameter for parameter in FILTERS.openapi_parameters}
    assert set(documented) == {"colour", "owner_id", "order", "limit"} == FILTERS.names
    assert all(parameter["in"] == "query" and not parameter["required"] for parameter in documented.values())
    assert documented["owner_id"]["description"] == "Whose rows."
    colours = documented["colour"]["schema"]["anyOf"][0]
    assert colours["items"]["enum"] == ["red", "blue"]  # definitions inlined: no dangling $ref
    assert colours["maxItems"] == 2
    assert documented["limit"]["schema"]["maximum"] == 50
