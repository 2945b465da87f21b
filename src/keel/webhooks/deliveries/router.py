from __future__ import annotations

import uuid

from keel.core.auth import AdminScope
from keel.core.openapi import problem_responses
from keel.core.pagination import DEFAULT_LIMIT, CursorParam, Cursors, LimitParam, Page
from keel.core.request_info import CurrentRequestInfo
from keel.core.transactions import transactional_router
from keel.webhooks.deliveries import service
from keel.webhooks.deliveries.schemas import (
    DeliveryDetail,
    DeliveryRead,
    DeliveryStatus,
    Purged,
    PurgeRequest,
    ReplayRequest,
    Requeued,
    TestSent,
)

router = transactional_router(
    prefix="/orgs/{org_id}/webhooks/{endpoint_id}",
    tags=["webhooks"],
    responses=problem_responses(400, 401, 403, 404, 422, 429),
)


@router.get("/deliveries", response_model=Page[DeliveryRead])
async def list_deliveries(
    endpoint_id: uuid.UUID,
    scope: AdminScope,
    cursors: Cursors,
    status: DeliveryStatus | None = None,
    cursor: CursorParam = None,
    limit: LimitParam = DEFAULT_LIMIT,
) -> Page[DeliveryRead]:
    """The endpoint's deliveries, newest first, optionally of one status. Auth: admin+."""
    items, next_cursor = await service.list_deliveries(
        scope.session, scope, cursors, endpoint_id, status=status, cursor=cursor, limit=limit
    )
    return Page[DeliveryRead](items=items, next_cursor=next_cursor)


@router.get("/deliveries/{delivery_id}", response_model=DeliveryDetail)
async def get_delivery(endpoint_id: uuid.UUID, delivery_id: uuid.UUID, scope: AdminScope) -> DeliveryDetail:
    """One delivery with its payload and every attempt. Auth: admin+."""
    return await service.get_delivery(scope.session, scope, endpoint_id, delivery_id)


@router.post(
    "/deliveries/{delivery_id}/retry", response_model=Requeued, status_code=202, responses=problem_responses(409)
)
async def retry_delivery(
    endpoint_id: uuid.UUID, delivery_id: uuid.UUID, scope: AdminScope, origin: CurrentRequestInfo
) -> Requeued:
    """Try a dead delivery again, now, with its attempts counted afresh. Auth: admin+."""
    return Requeued(requeued=await service.retry_delivery(scope.session, scope, origin, endpoint_id, delivery_id))


@router.post("/replay", response_model=Requeued, status_code=202)
async def replay(
    endpoint_id: uuid.UUID, body: ReplayRequest, scope: AdminScope, origin: CurrentRequestInfo
) -> Requeued:
    """Try again every delivery to the endpoint that died at or after `since`. Auth: admin+."""
    return Requeued(requeued=await service.replay_dead(scope.session, scope, origin, endpoint_id, body.since))


@router.post("/purge-dead", response_model=Purged)
async def purge_dead(
    endpoint_id: uuid.UUID, body: PurgeRequest, scope: AdminScope, origin: CurrentRequestInfo
) -> Purged:
    """Delete for good the endpoint's dead deliveries that died before `before` (all of them
    without it), with their attempts; they cannot be replayed afterwards. Auth: admin+."""
    return Purged(purged=await service.purge_dead(scope.session, scope, origin, endpoint_id, body.before))


@router.post("/test", response_model=TestSent, status_code=202)
async def send_test(endpoint_id: uuid.UUID, scope: AdminScope) -> TestSent:
    """Queue a `ping` event for this endpoint alone (sent even if it does not subscribe to `ping`). Auth: admin+."""
    await service.send_test(scope.session, scope, endpoint_id)
    return TestSent()
