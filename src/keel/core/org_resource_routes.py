"""The six routes every org-owned resource exposes, generated once.

(No ``from __future__ import annotations`` here: FastAPI must see the real
schema classes in the generated endpoints' signatures.)
"""

import functools
import inspect
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from keel.core.auth import AdminScope, MemberScope, ViewerScope
from keel.core.openapi import problem_responses
from keel.core.org_resources import OrgResources
from keel.core.pagination import DEFAULT_LIMIT, CursorParam, Cursors, LimitParam, Page
from keel.core.principal import OrgScope
from keel.core.versioning import etag, parse_if_match
from keel.core.writes import IdempotencyKeyHeader, IfMatchHeader, idempotent

Values = Callable[[BaseModel], dict[str, Any]]


def add_org_resource_routes(
    router: APIRouter,
    *,
    resources: OrgResources[Any, Any],
    create_schema: type[BaseModel],
    update_schema: type[BaseModel],
    read_schema: type[BaseModel],
    create_values: Values = lambda body: body.model_dump(),
    update_values: Values = lambda body: body.model_dump(exclude_unset=True),
    before_write: Callable[[Any, OrgScope, dict[str, Any]], Awaitable[None]] | None = None,
) -> None:
    """List, create, get, update, delete and restore on ``router`` (prefix ``.../{org_id}/things``)."""
    noun = resources.noun.lower()
    id_name = f"{resources.event_prefix}_id"

    async def check(session: Any, scope: OrgScope, values: dict[str, Any]) -> dict[str, Any]:
        if before_write is not None:
            await before_write(session, scope, values)
        return values

    async def list_items(
        scope: ViewerScope,
        cursors: Cursors,
        cursor: CursorParam = None,
        limit: LimitParam = DEFAULT_LIMIT,
    ) -> Page[Any]:
        items, next_cursor = await resources.page(scope.session, scope, cursors, cursor=cursor, limit=limit)
        return Page[read_schema](items=items, next_cursor=next_cursor)  # type: ignore[valid-type]

    async def create_item(
        body: create_schema,  # type: ignore[valid-type]
        request: Request,
        response: Response,
        scope: MemberScope,
        key: IdempotencyKeyHeader = None,
    ) -> Response:
        async def act() -> BaseModel:
            return await resources.create(scope.session, scope, await check(scope.session, scope, create_values(body)))  # type: ignore[no-any-return]

        return await idempotent(request, response, scope.session, scope.principal, key, body, act)

    async def get_item(item_id: uuid.UUID, response: Response, scope: ViewerScope) -> Any:
        row = await resources.load(scope.session, scope, item_id)
        response.headers["ETag"] = etag(row.version)
        return resources.read(row)

    async def update_item(
        item_id: uuid.UUID,
        body: update_schema,  # type: ignore[valid-type]
        response: Response,
        scope: MemberScope,
        if_match: IfMatchHeader = None,
    ) -> Any:
        values = await check(scope.session, scope, update_values(body))
        item = await resources.update(scope.session, scope, item_id, values, expected=parse_if_match(if_match))
        response.headers["ETag"] = etag(item.version)
        return item

    async def delete_item(item_id: uuid.UUID, scope: MemberScope, if_match: IfMatchHeader = None) -> Response:
        await resources.delete(scope.session, scope, item_id, expected=parse_if_match(if_match))
        return Response(status_code=204)

    async def restore_item(item_id: uuid.UUID, scope: AdminScope) -> Any:
        return await resources.restore(scope.session, scope, item_id)

    item = "/{" + id_name + "}"
    by_id = {
        endpoint.__name__: _id_named(endpoint, id_name)
        for endpoint in (get_item, update_item, delete_item, restore_item)
    }
    router.add_api_route(
        "",
        list_items,
        methods=["GET"],
        response_model=Page[read_schema],  # type: ignore[valid-type]
        name=f"list_{noun}s",
        description=f"Live {noun}s, newest first, cursor-paginated. Auth: viewer+.",
    )
    router.add_api_route(
        "",
        create_item,
        methods=["POST"],
        status_code=201,
        response_model=read_schema,
        name=f"create_{noun}",
        responses=problem_responses(409),
        description=f"Create a {noun}; repeatable with Idempotency-Key. Auth: member+.",
    )
    router.add_api_route(
        item,
        by_id["get_item"],
        methods=["GET"],
        response_model=read_schema,
        name=f"get_{noun}",
        description=f"One {noun}, with its ETag. Auth: viewer+.",
    )
    router.add_api_route(
        item,
        by_id["update_item"],
        methods=["PATCH"],
        response_model=read_schema,
        name=f"update_{noun}",
        responses=problem_responses(409, 412),
        description=f"Change a {noun}; with If-Match, only if unchanged since read (else 412). Auth: member+.",
    )
    router.add_api_route(
        item,
        by_id["delete_item"],
        methods=["DELETE"],
        status_code=204,
        name=f"delete_{noun}",
        responses=problem_responses(412),
        description=f"Soft-delete a {noun} (admins can restore it). Auth: member+.",
    )
    router.add_api_route(
        item + "/restore",
        by_id["restore_item"],
        methods=["POST"],
        response_model=read_schema,
        name=f"restore_{noun}",
        description=f"Bring back a soft-deleted {noun}. Auth: admin+.",
    )


def _id_named(endpoint: Callable[..., Awaitable[Any]], name: str) -> Callable[..., Awaitable[Any]]:
    """The endpoint with its ``item_id`` parameter called ``name`` (project_id, …),
    so paths and docs speak of the resource."""
    signature = inspect.signature(endpoint)
    parameters = [p.replace(name=name) if p.name == "item_id" else p for p in signature.parameters.values()]

    @functools.wraps(endpoint)
    async def named(**kwargs: Any) -> Any:
        kwargs["item_id"] = kwargs.pop(name)
        return await endpoint(**kwargs)

    named.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    return named
