"""What an org's admins see and do with an endpoint's deliveries."""

from __future__ import annotations

import uuid
from datetime import datetime

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.errors import Conflict, NotFound
from keel.core.outbox import emit
from keel.core.pagination import CursorCodec, paged
from keel.core.principal import OrgScope, Role
from keel.core.request_info import RequestInfo
from keel.webhooks.deliveries.models import DEAD, WebhookDelivery
from keel.webhooks.deliveries.repository import DeliveryRepository
from keel.webhooks.deliveries.schemas import AttemptRead, DeliveryDetail, DeliveryRead, DeliveryStatus
from keel.webhooks.endpoints.repository import EndpointRepository
from keel.webhooks.endpoints.service import audit
from keel.webhooks.event_types import PING

# The payload key that sends an event to one endpoint only (see keel.webhooks.fanout).
ONLY_ENDPOINT = "endpoint_id"


async def _require_endpoint(session: AsyncSession, scope: OrgScope, endpoint_id: uuid.UUID) -> None:
    scope.require(Role.ADMIN)
    if await EndpointRepository(session, scope).get(endpoint_id) is None:
        raise NotFound("Webhook endpoint not found.")


async def _delivery(
    session: AsyncSession,
    scope: OrgScope,
    repository: DeliveryRepository,
    endpoint_id: uuid.UUID,
    delivery_id: uuid.UUID,
) -> WebhookDelivery:
    """The endpoint's delivery, in this org; 404 for anything else."""
    await _require_endpoint(session, scope, endpoint_id)
    delivery = await repository.get(delivery_id)
    if delivery is None or delivery.endpoint_id != endpoint_id:
        raise NotFound("Delivery not found.")
    return delivery


async def list_deliveries(
    session: AsyncSession,
    scope: OrgScope,
    codec: CursorCodec,
    endpoint_id: uuid.UUID,
    *,
    status: DeliveryStatus | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[DeliveryRead], str | None]:
    await _require_endpoint(session, scope, endpoint_id)
    repository = DeliveryRepository(session, scope)
    deliveries, next_cursor = await paged(
        codec,
        f"deliveries:{status or 'all'}",
        cursor,
        limit,
        lambda after: repository.page_for_endpoint(endpoint_id, status, after, limit),
        lambda delivery: [delivery.created_at, delivery.id],
    )
    return [DeliveryRead.model_validate(delivery) for delivery in deliveries], next_cursor


async def get_delivery(
    session: AsyncSession, scope: OrgScope, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> DeliveryDetail:
    repository = DeliveryRepository(session, scope)
    delivery = await _delivery(session, scope, repository, endpoint_id, delivery_id)
    attempts = [AttemptRead.model_validate(attempt) for attempt in await repository.attempts(delivery.id)]
    return DeliveryDetail(
        **DeliveryRead.model_validate(delivery).model_dump(),
        payload=orjson.loads(delivery.body),
        attempt_log=attempts,
    )


async def retry_delivery(
    session: AsyncSession, scope: OrgScope, origin: RequestInfo, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> int:
    """A dead delivery pending again, due now."""
    repository = DeliveryRepository(session, scope)
    delivery = await _delivery(session, scope, repository, endpoint_id, delivery_id)
    if delivery.status != DEAD:
        raise Conflict("Only a dead delivery can be retried; this one is " + delivery.status + ".")
    requeued = await repository.requeue_dead(endpoint_id, since=None, delivery_id=delivery_id)
    audit(session, scope, origin, "webhook.delivery_retried", endpoint_id, delivery_id=str(delivery_id))
    return requeued


async def replay_dead(
    session: AsyncSession, scope: OrgScope, origin: RequestInfo, endpoint_id: uuid.UUID, since: datetime
) -> int:
    """Every delivery to the endpoint that died at or after ``since``, pending again."""
    await _require_endpoint(session, scope, endpoint_id)
    requeued = await DeliveryRepository(session, scope).requeue_dead(endpoint_id, since=since, delivery_id=None)
    audit(session, scope, origin, "webhook.replayed", endpoint_id, since=since.isoformat(), requeued=requeued)
    return requeued


async def purge_dead(
    session: AsyncSession, scope: OrgScope, origin: RequestInfo, endpoint_id: uuid.UUID, before: datetime | None
) -> int:
    """The endpoint's dead deliveries (died before ``before``, if given) deleted for good."""
    await _require_endpoint(session, scope, endpoint_id)
    purged = await DeliveryRepository(session, scope).purge_dead(endpoint_id, before=before)
    details = {"purged": purged, **({"before": before.isoformat()} if before is not None else {})}
    audit(session, scope, origin, "webhook.dead_purged", endpoint_id, **details)
    return purged


async def send_test(session: AsyncSession, scope: OrgScope, endpoint_id: uuid.UUID) -> None:
    """A ``ping`` event for this endpoint alone, delivered as any other."""
    await _require_endpoint(session, scope, endpoint_id)
    await emit(
        session,
        PING,
        {ONLY_ENDPOINT: str(endpoint_id), "message": "A test delivery from keel."},
        org_id=scope.org_id,
    )
