"""Outbox events become webhook deliveries: one per subscribed endpoint.

Runs as one of the worker's outbox consumers, in the transaction that marks
the events processed, so an event's deliveries are written exactly when the
event is consumed. Each delivery's body is fixed here, as every attempt will
send and sign it: ``{"type", "timestamp", "data", "event_id", "org_seq"}``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.clock import now
from keel.core.models import new_id
from keel.core.outbox import OutboxMessage
from keel.webhooks.deliveries.models import PENDING
from keel.webhooks.deliveries.repository import DispatchRepository
from keel.webhooks.deliveries.service import ONLY_ENDPOINT
from keel.webhooks.endpoints.models import WebhookEndpoint
from keel.webhooks.endpoints.repository import SubscribedEndpoints


def message_id(event_id: uuid.UUID) -> str:
    """The ``webhook-id`` of an event's deliveries: the same for every attempt and endpoint."""
    return f"msg_{event_id.hex}"


def _subscribed(endpoint: WebhookEndpoint, message: OutboxMessage) -> bool:
    only = message.payload.get(ONLY_ENDPOINT)
    if only is not None:
        return bool(str(endpoint.id) == only)
    return subscribes(endpoint.event_types, message.event_type)


def subscribes(event_types: Sequence[str] | None, event_type: str) -> bool:
    """Whether an endpoint with these event types hears ``event_type`` (none listed: every type)."""
    return not event_types or event_type in event_types


class WebhookFanout:
    name = "webhooks"

    def __init__(self, added: Callable[[], None]) -> None:
        """``added``: told when deliveries were written (the dispatcher then looks for them)."""
        self.added = added

    async def hears(self, session: AsyncSession, event_type: str, org_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """The orgs with an enabled endpoint subscribed to ``event_type``."""
        subscriptions = await SubscribedEndpoints(session).subscriptions_in(org_ids)
        return {org_id for org_id, types in subscriptions if subscribes(types, event_type)}

    async def consume(self, session: AsyncSession, messages: Sequence[OutboxMessage]) -> None:
        org_ids = sorted({message.org_id for message in messages if message.org_id is not None})
        if not org_ids:
            return
        endpoints: dict[uuid.UUID, list[WebhookEndpoint]] = defaultdict(list)
        for endpoint in await SubscribedEndpoints(session).enabled_in(org_ids):
            endpoints[endpoint.org_id].append(endpoint)
        targeted = [
            (message, [e for e in endpoints.get(message.org_id, []) if _subscribed(e, message)])
            for message in messages
            if message.org_id is not None
        ]
        targeted = [(message, targets) for message, targets in targeted if targets]
        per_org: dict[uuid.UUID, int] = defaultdict(int)
        for message, _ in targeted:
            assert message.org_id is not None
            per_org[message.org_id] += 1
        repository = DispatchRepository(session)
        next_seq = {org_id: await repository.next_sequence(org_id, count) for org_id, count in sorted(per_org.items())}
        created_at = now()
        rows: list[dict[str, Any]] = []
        for message, targets in targeted:
            assert message.org_id is not None
            seq, next_seq[message.org_id] = next_seq[message.org_id], next_seq[message.org_id] + 1
            body = orjson.dumps(
                {
                    "type": message.event_type,
                    "timestamp": message.created_at.isoformat().replace("+00:00", "Z"),
                    "data": message.payload,
                    "event_id": str(message.id),
                    "org_seq": seq,
                }
            ).decode()
            rows.extend(
                {
                    "id": new_id(),
                    "org_id": message.org_id,
                    "endpoint_id": endpoint.id,
                    "event_id": message.id,
                    "event_type": message.event_type,
                    "message_id": message_id(message.id),
                    "body": body,
                    "status": PENDING,
                    "attempts": 0,
                    "next_attempt_at": created_at,
                    "created_at": created_at,
                }
                for endpoint in targets
            )
        await repository.add(rows)
        if rows:
            self.added()
