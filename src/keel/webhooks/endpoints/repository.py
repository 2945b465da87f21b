from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update

from keel.core.db import execute_core
from keel.core.pagination import KeysetQuery
from keel.core.repository import OrgRepository, Repository
from keel.webhooks.endpoints.models import WebhookEndpoint


class EndpointRepository(OrgRepository[WebhookEndpoint]):
    model = WebhookEndpoint

    async def count(self) -> int:
        return int(await self.session.scalar(self.scoped(select(func.count()).select_from(WebhookEndpoint))) or 0)

    async def page_oldest_first(self, after: Sequence[Any] | None, limit: int) -> Sequence[WebhookEndpoint]:
        statement, params = _OLDEST_FIRST.page(after, limit)
        return await self.all(statement, self.params(**params))


_OLDEST_FIRST = KeysetQuery.of(
    EndpointRepository.template(select(WebhookEndpoint)),
    [WebhookEndpoint.created_at, WebhookEndpoint.id],
    descending=False,
)


# Built once: asked for every batch of device events.
_SUBSCRIPTIONS = select(WebhookEndpoint.org_id, WebhookEndpoint.event_types).where(
    WebhookEndpoint.org_id.in_(bindparam("org_ids", expanding=True)), WebhookEndpoint.enabled.is_(True)
)


class SubscribedEndpoints(Repository[WebhookEndpoint]):
    """The worker's reads, across orgs: it serves every org's events."""

    model = WebhookEndpoint

    async def enabled_in(self, org_ids: Sequence[uuid.UUID]) -> Sequence[WebhookEndpoint]:
        statement = select(WebhookEndpoint).where(
            WebhookEndpoint.org_id.in_(org_ids), WebhookEndpoint.enabled.is_(True)
        )
        return await self.all(statement)

    async def subscriptions_in(self, org_ids: Sequence[uuid.UUID]) -> list[tuple[uuid.UUID, list[Any]]]:
        """Each enabled endpoint's org and event types (empty: every type)."""
        if not org_ids:
            return []
        rows = await execute_core(self.session, _SUBSCRIPTIONS, {"org_ids": sorted(org_ids)})
        return [(row.org_id, row.event_types or []) for row in rows]

    async def disabled_count(self) -> int:
        return int(await self.session.scalar(select(func.count()).where(WebhookEndpoint.enabled.is_(False))) or 0)

    async def by_ids(self, endpoint_ids: Sequence[uuid.UUID]) -> Sequence[WebhookEndpoint]:
        return await self.all(select(WebhookEndpoint).where(WebhookEndpoint.id.in_(endpoint_ids)))

    async def succeeded(self, endpoint_ids: Sequence[uuid.UUID]) -> None:
        """An attempt to each of ``endpoint_ids`` succeeded: none of them is failing."""
        if endpoint_ids:
            await self.session.execute(
                update(WebhookEndpoint)
                .where(WebhookEndpoint.id.in_(endpoint_ids), WebhookEndpoint.failing_since.is_not(None))
                .values(failing_since=None)
            )

    async def failing(self, endpoint_id: uuid.UUID, at: datetime) -> datetime | None:
        """Note a failed attempt; since when the endpoint has been failing."""
        await self.session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.failing_since.is_(None))
            .values(failing_since=at)
        )
        since: datetime | None = await self.session.scalar(
            select(WebhookEndpoint.failing_since).where(WebhookEndpoint.id == endpoint_id)
        )
        return since

    async def disable(self, endpoint_id: uuid.UUID, reason: str) -> bool:
        """Disable an enabled endpoint; whether this call did."""
        disabled = await self.session.execute(
            update(WebhookEndpoint)
            .where(WebhookEndpoint.id == endpoint_id, WebhookEndpoint.enabled.is_(True))
            .values(enabled=False, disabled_reason=reason)
            .returning(WebhookEndpoint.id)
        )
        return disabled.first() is not None
