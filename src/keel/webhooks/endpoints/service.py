"""Webhook endpoints: an org's admins say where its events go."""

from __future__ import annotations

import contextlib
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from keel.config import Settings, WebhookSettings
from keel.core.clock import now
from keel.core.errors import Conflict, NotFound, ValidationFailed
from keel.core.pagination import CursorCodec, paged
from keel.core.principal import OrgScope, Role
from keel.core.request_info import RequestInfo
from keel.identity.audit.service import record
from keel.webhooks.endpoints.models import WebhookEndpoint
from keel.webhooks.endpoints.repository import EndpointRepository
from keel.webhooks.endpoints.schemas import (
    WebhookEndpointCreated,
    WebhookEndpointRead,
    WebhookEndpointUpdate,
    WebhookSecretRotated,
)
from keel.webhooks.event_types import EVENT_TYPES
from keel.webhooks.secret_box import SecretBox
from keel.webhooks.signing import new_signing_secret
from keel.webhooks.targets import TargetRefused, checked_url


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, extra={"errors": [{"loc": ["body", field], "msg": message}]})


class EndpointPolicy:
    """What an endpoint may be, from the settings: built once per app."""

    def __init__(self, settings: WebhookSettings, *, require_https: bool, secrets: SecretBox) -> None:
        self.settings = settings
        self.require_https = require_https
        self.secrets = secrets

    @classmethod
    def for_settings(cls, settings: Settings) -> EndpointPolicy:
        """https only where keel is deployed (staging, production)."""
        secrets = SecretBox(settings.signing_key, settings.auth.previous_secret_keys)
        return cls(settings.webhooks, require_https=settings.env.is_deployed, secrets=secrets)

    def url(self, url: str) -> str:
        try:
            return checked_url(
                url, require_https=self.require_https, allow_private=self.settings.webhook_allow_private_targets
            )
        except TargetRefused as refused:
            raise _invalid("url", f"url {refused}") from None


def _event_types(event_types: list[str]) -> list[str]:
    unknown = sorted({name for name in event_types if name not in EVENT_TYPES})
    if unknown:
        raise _invalid("event_types", f"Unknown event types: {', '.join(unknown[:5])}.")
    return sorted(set(event_types))


async def _endpoint(repository: EndpointRepository, endpoint_id: uuid.UUID) -> WebhookEndpoint:
    endpoint = await repository.get(endpoint_id)
    if endpoint is None:
        raise NotFound("Webhook endpoint not found.")
    return endpoint


def audit(
    session: AsyncSession, scope: OrgScope, origin: RequestInfo, action: str, endpoint_id: uuid.UUID, **details: Any
) -> None:
    """An audit row about an endpoint (or its deliveries), in the caller's transaction."""
    record(
        session,
        origin,
        action,
        actor=scope.principal,
        org_id=scope.org_id,
        target_type="webhook_endpoint",
        target_id=endpoint_id,
        details=details or None,
    )


async def create_endpoint(
    session: AsyncSession,
    scope: OrgScope,
    origin: RequestInfo,
    policy: EndpointPolicy,
    *,
    url: str,
    event_types: list[str],
    description: str,
) -> WebhookEndpointCreated:
    scope.require(Role.ADMIN)
    repository = EndpointRepository(session, scope)
    url = policy.url(url)
    types = _event_types(event_types)
    if await repository.count() >= policy.settings.webhook_max_endpoints_per_org:
        raise Conflict(f"An org may have at most {policy.settings.webhook_max_endpoints_per_org} webhook endpoints.")
    secret = new_signing_secret()
    endpoint = WebhookEndpoint(
        org_id=scope.org_id,
        url=url,
        description=description,
        event_types=types,
        secret_sealed=policy.secrets.seal(secret),
        created_by_id=scope.principal.user_id,
    )
    session.add(endpoint)
    await session.flush()
    audit(session, scope, origin, "webhook.endpoint_created", endpoint.id, url=url)
    return WebhookEndpointCreated(**WebhookEndpointRead.model_validate(endpoint).model_dump(), secret=secret)


async def list_endpoints(
    session: AsyncSession, scope: OrgScope, codec: CursorCodec, *, cursor: str | None, limit: int
) -> tuple[list[WebhookEndpointRead], str | None]:
    scope.require(Role.ADMIN)
    repository = EndpointRepository(session, scope)
    endpoints, next_cursor = await paged(
        codec,
        "created_at",
        cursor,
        limit,
        lambda after: repository.page_oldest_first(after, limit),
        lambda endpoint: [endpoint.created_at, endpoint.id],
    )
    return [WebhookEndpointRead.model_validate(endpoint) for endpoint in endpoints], next_cursor


async def get_endpoint(session: AsyncSession, scope: OrgScope, endpoint_id: uuid.UUID) -> WebhookEndpointRead:
    scope.require(Role.ADMIN)
    return WebhookEndpointRead.model_validate(await _endpoint(EndpointRepository(session, scope), endpoint_id))


async def update_endpoint(
    session: AsyncSession,
    scope: OrgScope,
    origin: RequestInfo,
    policy: EndpointPolicy,
    endpoint_id: uuid.UUID,
    changes: WebhookEndpointUpdate,
) -> WebhookEndpointRead:
    scope.require(Role.ADMIN)
    endpoint = await _endpoint(EndpointRepository(session, scope), endpoint_id)
    sent = changes.model_fields_set
    if "url" in sent and changes.url is not None:
        endpoint.url = policy.url(changes.url)
    if "event_types" in sent and changes.event_types is not None:
        endpoint.event_types = _event_types(changes.event_types)
    if "description" in sent and changes.description is not None:
        endpoint.description = changes.description
    if "enabled" in sent and changes.enabled is not None:
        endpoint.enabled = changes.enabled
        if changes.enabled:
            endpoint.disabled_reason = None
            endpoint.failing_since = None
    await session.flush()
    audit(session, scope, origin, "webhook.endpoint_updated", endpoint.id, fields=sorted(sent))
    return WebhookEndpointRead.model_validate(endpoint)


async def delete_endpoint(session: AsyncSession, scope: OrgScope, origin: RequestInfo, endpoint_id: uuid.UUID) -> None:
    """Delete the endpoint; its deliveries, pending or past, go with it."""
    scope.require(Role.ADMIN)
    endpoint = await _endpoint(EndpointRepository(session, scope), endpoint_id)
    await session.delete(endpoint)
    await session.flush()
    audit(session, scope, origin, "webhook.endpoint_deleted", endpoint_id, url=endpoint.url)


async def rotate_secret(
    session: AsyncSession, scope: OrgScope, origin: RequestInfo, policy: EndpointPolicy, endpoint_id: uuid.UUID
) -> WebhookSecretRotated:
    """A new secret signs from now on; the current one also signs for the overlap."""
    scope.require(Role.ADMIN)
    endpoint = await _endpoint(EndpointRepository(session, scope), endpoint_id)
    secret = new_signing_secret()
    expires_at: datetime | None = now() + timedelta(seconds=policy.settings.webhook_secret_overlap_s)
    try:
        previous: str | None = policy.secrets.seal(policy.secrets.open(endpoint.secret_sealed))
    except ValueError:  # sealed with a key keel no longer has: there is nothing to sign the overlap with
        previous, expires_at = None, None
    endpoint.previous_secret_sealed = previous
    endpoint.previous_secret_expires_at = expires_at
    endpoint.secret_sealed = policy.secrets.seal(secret)
    await session.flush()
    audit(session, scope, origin, "webhook.secret_rotated", endpoint.id)
    return WebhookSecretRotated(secret=secret, previous_expires_at=expires_at)


def signing_secrets(endpoint: WebhookEndpoint, secrets: SecretBox, at: datetime) -> list[str]:
    """The secrets that sign an attempt made at ``at``: the current one, and the
    previous one while its overlap lasts and keel can still open it (sealed
    under a key since dropped, it is left out: the current secret is what
    receivers move to). Raises ValueError if the current one cannot be opened."""
    signing = [secrets.open(endpoint.secret_sealed)]
    expires_at = endpoint.previous_secret_expires_at
    if endpoint.previous_secret_sealed is not None and expires_at is not None and at < expires_at:
        with contextlib.suppress(ValueError):
            signing.append(secrets.open(endpoint.previous_secret_sealed))
    return signing
