from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, field_validator

from keel.core.schemas import InputModel
from keel.realtime.devices.models import Device
from keel.realtime.keys import encode, parse_public_key

DeviceType = Literal["phone", "tablet", "desktop", "web", "server"]


class DeviceCreate(InputModel):
    """A device to register: its Ed25519 public key signs its handshakes."""

    name: Annotated[str, Field(min_length=1, max_length=100)]
    type: DeviceType
    public_key: Annotated[
        str,
        Field(
            max_length=64,
            description="Standard base64 of the 32-byte raw Ed25519 public key.",
            examples=["11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="],
        ),
    ]

    @field_validator("name")
    @classmethod
    def _named(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value

    @field_validator("public_key")
    @classmethod
    def _key(cls, value: str) -> str:
        parse_public_key(value)
        return value


class DeviceRead(BaseModel):
    """A registered device: its public key, never anything secret."""

    id: uuid.UUID
    name: str
    type: DeviceType
    public_key: str = Field(description="Standard base64 of the raw Ed25519 public key.")
    created_at: datetime
    key_rotated_at: datetime | None
    last_connected_at: datetime | None
    online: bool = Field(description="Whether the device has a live connection now, to any keel process.")

    @classmethod
    def of(cls, device: Device, *, online: bool = False) -> DeviceRead:
        return cls(
            id=device.id,
            name=device.name,
            type=device.type,  # the CHECK constraint holds it to DeviceType
            public_key=encode(device.public_key),
            created_at=device.created_at,
            key_rotated_at=device.key_rotated_at,
            last_connected_at=device.last_connected_at,
            online=online,
        )
