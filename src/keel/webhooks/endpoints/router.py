from __future__ import annotations

import uuid

from fastapi import Request, Response

from keel.core.auth import AdminScope, CurrentPrincipal
from keel.core.openapi import problem_responses
from keel.core.pagination import DEFAULT_LIMIT, CursorParam, Cursors, LimitParam, Page
from keel.core.platform import request_platform
from keel.core.request_info import CurrentRequestInfo
from keel.core.transactions import transactional_router
from keel.webhooks.endpoints import service
from keel.webhooks.endpoints.schemas import (
    EventTypeCatalog,
    EventTypeInfo,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointRead,
    WebhookEndpointUpdate,
    WebhookSecretRotated,
)
from keel.webhooks.endpoints.service import EndpointPolicy
from keel.webhooks.event_types import EVENT_TYPES

router = transactional_router(
    prefix="/orgs/{org_id}/webhooks", tags=["webhooks"], responses=problem_responses(400, 401, 403, 404, 422, 429)
)
catalog_router = transactional_router(prefix="/webhooks", tags=["webhooks"], responses=problem_responses(401, 429))


def _policy(request: Request) -> EndpointPolicy:
    return request_platform(request).get(EndpointPolicy)


@router.post("", response_model=WebhookEndpointCreated, status_code=201, responses=problem_responses(409))
async def create_endpoint(
    body: WebhookEndpointCreate, scope: AdminScope, origin: CurrentRequestInfo, request: Request
) -> WebhookEndpointCreated:
    """Create an endpoint; its signing secret is in this response only. Auth: admin+."""
    return await service.create_endpoint(
        scope.session,
        scope,
        origin,
        _policy(request),
        url=body.url,
        event_types=body.event_types,
        description=body.description,
    )


@router.get("", response_model=Page[WebhookEndpointRead])
async def list_endpoints(
    scope: AdminScope, cursors: Cursors, cursor: CursorParam = None, limit: LimitParam = DEFAULT_LIMIT
) -> Page[WebhookEndpointRead]:
    """The org's endpoints, oldest first, without secrets. Auth: admin+."""
    items, next_cursor = await service.list_endpoints(scope.session, scope, cursors, cursor=cursor, limit=limit)
    return Page[WebhookEndpointRead](items=items, next_cursor=next_cursor)


@router.get("/{endpoint_id}", response_model=WebhookEndpointRead)
async def get_endpoint(endpoint_id: uuid.UUID, scope: AdminScope) -> WebhookEndpointRead:
    """One endpoint, without its secret. Auth: admin+."""
    return await service.get_endpoint(scope.session, scope, endpoint_id)


@router.patch("/{endpoint_id}", response_model=WebhookEndpointRead)
async def update_endpoint(
    endpoint_id: uuid.UUID,
    body: WebhookEndpointUpdate,
    scope: AdminScope,
    origin: CurrentRequestInfo,
    request: Request,
) -> WebhookEndpointRead:
    """Change an endpoint's URL, event types, description, or enable/disable it. Auth: admin+."""
    return await service.update_endpoint(scope.session, scope, origin, _policy(request), endpoint_id, body)


@router.delete("/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: uuid.UUID, scope: AdminScope, origin: CurrentRequestInfo) -> Response:
    """Delete an endpoint and its deliveries. Auth: admin+."""
    await service.delete_endpoint(scope.session, scope, origin, endpoint_id)
    return Response(status_code=204)


@router.post("/{endpoint_id}/rotate-secret", response_model=WebhookSecretRotated, status_code=201)
async def rotate_secret(
    endpoint_id: uuid.UUID, scope: AdminScope, origin: CurrentRequestInfo, request: Request
) -> WebhookSecretRotated:
    """A new signing secret, shown once; the old one keeps signing beside it for the overlap window
    (`KEEL_WEBHOOK_SECRET_OVERLAP_S`). Auth: admin+."""
    return await service.rotate_secret(scope.session, scope, origin, _policy(request), endpoint_id)


@catalog_router.get("/event-types", response_model=EventTypeCatalog)
async def event_types(_: CurrentPrincipal) -> EventTypeCatalog:
    """Every event type an endpoint may subscribe to, with the JSON schema of its `data`. Auth: any caller."""
    return EventTypeCatalog(
        items=[EventTypeInfo(name=name, data_schema=schema) for name, schema in EVENT_TYPES.items()]
    )
