from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from keel.core.schemas import InputModel, PatchModel

MAX_EVENT_TYPES = 64

EndpointUrl = Annotated[str, Field(min_length=1, max_length=2048, examples=["https://hooks.example.com/keel"])]
EventTypes = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=64)]],
    Field(max_length=MAX_EVENT_TYPES, description="Event types sent to the endpoint; empty means every type."),
]
Description = Annotated[str, Field(max_length=500)]


class WebhookEndpointCreate(InputModel):
    """A new endpoint: where to send, which events, and a note for people."""

    url: EndpointUrl
    event_types: EventTypes = []
    description: Description = ""


class WebhookEndpointUpdate(PatchModel):
    """Changes to an endpoint; only the fields sent change. Enabling it again clears why it was disabled."""

    non_null = ("url", "event_types", "description", "enabled")

    url: EndpointUrl | None = None
    event_types: EventTypes | None = None
    description: Description | None = None
    # JSON true or false only: 0 and 1 are not a choice made on purpose.
    enabled: StrictBool | None = None


class WebhookEndpointRead(BaseModel):
    """An endpoint as listed: never its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = Field(description="Why keel disabled it (410 Gone, failing for days), if it did.")
    failing_since: datetime | None = Field(description="Since when every attempt has failed; null after a success.")
    created_at: datetime
    updated_at: datetime


class WebhookEndpointCreated(WebhookEndpointRead):
    """A just-created endpoint, with its signing secret (shown this once)."""

    secret: str = Field(description="`whsec_` + base64: verify deliveries with it. Shown once.")


class WebhookSecretRotated(BaseModel):
    """The endpoint's new signing secret (shown this once); the old one also
    signs until ``previous_expires_at`` (null: the old one was sealed with a
    key keel no longer has, so only the new one signs)."""

    secret: str
    previous_expires_at: datetime | None


class EventTypeInfo(BaseModel):
    """An event type a webhook endpoint may subscribe to, and the JSON schema of its `data`."""

    name: str
    data_schema: dict[str, object]


class EventTypeCatalog(BaseModel):
    """Every event type keel sends."""

    items: list[EventTypeInfo]
