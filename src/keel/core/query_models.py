"""A route's query parameters validated as one model, compiled once.

FastAPI (0.165) inspects each declared parameter's annotation again on every
request: the task list's nine filters cost ~100 µs a request on the benchmark
machine, as much as a third of the SQL it then runs. A Pydantic model's
validator is built once; the same nine take ~3 µs. A route declares the
model as a dependency (``Annotated[TaskListQuery, Depends(QueryModel(TaskListQuery))]``);
keel's API route class documents each of the model's fields as a query
parameter and refuses parameters the model does not have, as it does for
parameters declared one by one. A validation error is FastAPI's own
(``RequestValidationError``, located under ``query``), so it reads the same.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Generic, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)


class QueryModel(Generic[Model]):
    """A dependency that reads the query string into ``model``."""

    def __init__(self, model: type[Model]) -> None:
        self.model = model
        self.names = frozenset(field.alias or name for name, field in model.model_fields.items())
        # Fields a client may repeat (?status=a&status=b); every other takes the last value, as FastAPI does.
        self._repeated = frozenset(
            field.alias or name for name, field in model.model_fields.items() if _is_list(field.annotation)
        )
        self.openapi_parameters = _parameters(model)

    async def __call__(self, request: Request) -> Model:
        received: dict[str, Any] = {}
        for name, value in request.query_params.multi_items():
            if name in self._repeated:
                received.setdefault(name, []).append(value)
            else:
                received[name] = value
        try:
            return self.model.model_validate(received)
        except ValidationError as error:
            located = [{**detail, "loc": ("query", *detail["loc"])} for detail in error.errors(include_url=False)]
            raise RequestValidationError(located) from None


def _is_list(annotation: Any) -> bool:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_list(arg) for arg in typing.get_args(annotation))
    return typing.get_origin(annotation) is list


def _parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The model's fields as OpenAPI query parameters (definitions inlined)."""
    schema = model.model_json_schema()
    definitions = schema.get("$defs", {})
    required = set(schema.get("required", ()))
    parameters = []
    for name, field_schema in schema["properties"].items():
        inlined = _inline(field_schema, definitions)
        parameter = {"name": name, "in": "query", "required": name in required, "schema": inlined}
        if "description" in inlined:
            parameter["description"] = inlined.pop("description")
        parameters.append(parameter)
    return parameters


def _inline(schema: Any, definitions: dict[str, Any]) -> Any:
    if isinstance(schema, dict):
        reference = schema.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return _inline(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: _inline(value, definitions) for key, value in schema.items()}
    if isinstance(schema, list):
        return [_inline(item, definitions) for item in schema]
    return schema


def query_models(dependant: Any) -> list[QueryModel[Any]]:
    """The query models among a route's dependencies, at any depth."""
    found = [dependant.call] if isinstance(dependant.call, QueryModel) else []
    for sub in dependant.dependencies:
        found += query_models(sub)
    return found
