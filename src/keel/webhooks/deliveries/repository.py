from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, func, insert, or_, select, update

from keel.core.clock import now
from keel.core.pagination import KeysetQuery
from keel.core.repository import OrgRepository, Repository
from keel.core.sequences import reserve
from keel.webhooks.deliveries.models import (
    DEAD,
    DELIVERED,
    PENDING,
    WebhookAttempt,
    WebhookDelivery,
    WebhookOrgSequence,
)
from keel.webhooks.endpoints.models import WebhookEndpoint


class DeliveryRepository(OrgRepository[WebhookDelivery]):
    """An org's deliveries, as its admins see them."""

    model = WebhookDelivery

    async def page_for_endpoint(
        self, endpoint_id: uuid.UUID, status: str | None, after: Sequence[Any] | None, limit: int
    ) -> Sequence[WebhookDelivery]:
        query = _NEWEST_FIRST_BY_STATUS if status is not None else _NEWEST_FIRST
        statement, params = query.page(after, limit)
        extra = {"endpoint_id": endpoint_id, **({"status": status} if status is not None else {})}
        return await self.all(statement, self.params(**params, **extra))

    async def attempts(self, delivery_id: uuid.UUID) -> Sequence[WebhookAttempt]:
        statement = select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery_id)
        return (await self.session.scalars(statement.order_by(WebhookAttempt.attempted_at))).all()

    def _dead_of(self, endpoint_id: uuid.UUID) -> tuple[ColumnElement[bool], ...]:
        """The endpoint's dead deliveries, in this org."""
        return (
            WebhookDelivery.org_id == self.scope.org_id,
            WebhookDelivery.endpoint_id == endpoint_id,
            WebhookDelivery.status == DEAD,
        )

    async def requeue_dead(
        self, endpoint_id: uuid.UUID, *, since: datetime | None, delivery_id: uuid.UUID | None
    ) -> int:
        """Dead deliveries of the endpoint (one, or all finished since ``since``)
        pending again, due now, their attempts counted afresh; how many."""
        statement = (
            update(WebhookDelivery)
            .where(*self._dead_of(endpoint_id))
            .values(status=PENDING, attempts=0, next_attempt_at=now(), finished_at=None, claimed_until=None)
            .returning(WebhookDelivery.id)
        )
        if delivery_id is not None:
            statement = statement.where(WebhookDelivery.id == delivery_id)
        if since is not None:
            statement = statement.where(WebhookDelivery.finished_at >= since)
        return len((await self.session.execute(statement)).all())

    async def purge_dead(self, endpoint_id: uuid.UUID, *, before: datetime | None) -> int:
        """Delete the endpoint's dead deliveries (those that died before
        ``before``, if given) with their attempts; how many."""
        statement = delete(WebhookDelivery).where(*self._dead_of(endpoint_id)).returning(WebhookDelivery.id)
        if before is not None:
            statement = statement.where(WebhookDelivery.finished_at < before)
        return len((await self.session.execute(statement)).all())


def _shares(endpoint_ids: Sequence[uuid.UUID], limit: int, room: Callable[[uuid.UUID], int]) -> dict[uuid.UUID, int]:
    """``limit`` places dealt out one at a time to ``endpoint_ids`` in turn, each up to its room."""
    rooms = {endpoint_id: room(endpoint_id) for endpoint_id in endpoint_ids}
    shares = dict.fromkeys(endpoint_ids, 0)
    left = limit
    while left > 0:
        dealt = 0
        for endpoint_id in endpoint_ids:
            if left > 0 and shares[endpoint_id] < rooms[endpoint_id]:
                shares[endpoint_id] += 1
                left -= 1
                dealt += 1
        if dealt == 0:
            break
    return {endpoint_id: share for endpoint_id, share in shares.items() if share > 0}


def _newest_first(*, by_status: bool) -> KeysetQuery[Any]:
    statement = DeliveryRepository.template(select(WebhookDelivery)).where(
        WebhookDelivery.endpoint_id == bindparam("endpoint_id")
    )
    if by_status:
        statement = statement.where(WebhookDelivery.status == bindparam("status"))
    return KeysetQuery.of(statement, [WebhookDelivery.created_at, WebhookDelivery.id], descending=True)


_NEWEST_FIRST = _newest_first(by_status=False)
_NEWEST_FIRST_BY_STATUS = _newest_first(by_status=True)


@dataclass(frozen=True, slots=True)
class Lease:
    """A claimed delivery, held until ``until``."""

    delivery_id: uuid.UUID
    until: datetime


class DispatchRepository(Repository[WebhookDelivery]):
    """The worker's statements, across orgs."""

    model = WebhookDelivery

    async def next_sequence(self, org_id: uuid.UUID, count: int) -> int:
        """Reserve ``count`` numbers of the org's event sequence; the first."""
        firsts = await reserve(self.session, WebhookOrgSequence.org_id, WebhookOrgSequence.last_seq, {org_id: count})
        return firsts[org_id]

    async def add(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(WebhookDelivery), list(rows))

    async def claim_due(
        self,
        *,
        until: datetime,
        limit: int,
        room: Callable[[uuid.UUID], int],
        skip_endpoints: Sequence[uuid.UUID] = (),
    ) -> list[dict[str, Any]]:
        """Lease up to ``limit`` due pending deliveries, shared out a round
        at a time across the enabled endpoints that have some (the endpoint
        whose oldest is oldest first), at most ``room(endpoint_id)`` each,
        none of ``skip_endpoints``; as rows. Each endpoint's deliveries are
        found in its own index range, so one endpoint's backlog (a receiver
        that hangs or fails) costs the others nothing."""
        moment = now()
        due = (
            WebhookDelivery.status == PENDING,
            WebhookDelivery.next_attempt_at <= moment,
            or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < moment),
        )
        oldest = (
            select(func.min(WebhookDelivery.next_attempt_at))
            .where(WebhookDelivery.endpoint_id == WebhookEndpoint.id, *due)
            .scalar_subquery()
        )
        waiting = select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True), oldest.is_not(None))
        if skip_endpoints:
            waiting = waiting.where(WebhookEndpoint.id.not_in(skip_endpoints))
        endpoint_ids = list((await self.session.scalars(waiting.order_by(oldest).limit(limit))).all())
        shares = _shares(endpoint_ids, limit, room)
        claimed: list[dict[str, Any]] = []
        for endpoint_id, share in shares.items():
            pick = (
                select(WebhookDelivery.id)
                .where(WebhookDelivery.endpoint_id == endpoint_id, *due)
                .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
                .limit(share)
                .with_for_update(skip_locked=True)
            )
            leased = await self.session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(pick.scalar_subquery()))
                .values(claimed_until=until)
                .returning(
                    WebhookDelivery.id,
                    WebhookDelivery.org_id,
                    WebhookDelivery.endpoint_id,
                    WebhookDelivery.event_type,
                    WebhookDelivery.message_id,
                    WebhookDelivery.body,
                    WebhookDelivery.attempts,
                )
            )
            claimed.extend(dict(row) for row in leased.mappings())
        return claimed

    async def purge_delivered(self, *, before: datetime, limit: int) -> int:
        """Delete up to ``limit`` deliveries delivered before ``before`` (their attempts go with them)."""
        old = (
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status == DELIVERED, WebhookDelivery.finished_at < before)
            .limit(limit)
        )
        purged = await self.session.execute(
            delete(WebhookDelivery).where(WebhookDelivery.id.in_(old.scalar_subquery())).returning(WebhookDelivery.id)
        )
        return len(purged.all())

    async def dead_count(self) -> int:
        return int(await self.session.scalar(select(func.count()).where(WebhookDelivery.status == DEAD)) or 0)

    async def release(self, delivery_ids: Sequence[uuid.UUID], *, until: datetime) -> None:
        """Give back claimed deliveries not attempted, due as they were."""
        if delivery_ids:
            await self.session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.claimed_until == until)
                .values(claimed_until=None)
            )

    async def finish(self, attempts: Sequence[tuple[Lease, Mapping[str, Any]]]) -> set[uuid.UUID]:
        """Give each delivery its new state after an attempt, where this worker
        still holds the lease the attempt was made under; the ids it did.
        One statement for the deliveries of one lease that share a state."""
        groups: dict[tuple[datetime, tuple[tuple[str, Any], ...]], list[uuid.UUID]] = defaultdict(list)
        for lease, state in attempts:
            groups[(lease.until, tuple(sorted(state.items())))].append(lease.delivery_id)
        held: set[uuid.UUID] = set()
        for (until, columns), delivery_ids in groups.items():
            updated = await self.session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id.in_(delivery_ids), WebhookDelivery.claimed_until == until)
                .values(attempts=WebhookDelivery.attempts + 1, claimed_until=None, **dict(columns))
                .returning(WebhookDelivery.id)
            )
            held.update(updated.scalars())
        return held

    async def add_attempts(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            await self.session.execute(insert(WebhookAttempt), list(rows))
