"""The WebSocket protocol's frames: what clients may send, parsed strictly,
and what the server sends, built as JSON text."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Text64 = Annotated[str, Field(min_length=1, max_length=64)]


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Auth(_Message):
    """The answer to the challenge: a device's signature of the nonce, or a
    browser's access token (never in the URL)."""

    type: Literal["auth"]
    device_id: uuid.UUID | None = None
    signature: Annotated[str, Field(max_length=128)] | None = None
    token: Annotated[str, Field(max_length=4096)] | None = None


class Event(_Message):
    type: Literal["event"]
    id: Text64
    kind: Text64
    payload: Any = None
    ttl_s: Annotated[int, Field(ge=1)] | None = None
    # When the client made the event, by its clock: its TTL counts from then.
    sent_at: datetime | None = None


class Resume(_Message):
    type: Literal["resume"]
    after_seq: Annotated[int, Field(ge=0)]
    epoch: Annotated[int, Field(ge=1)] | None = None


class RotateKey(_Message):
    """A new public key, with the old key's signature of the session's nonce
    followed by the new key's bytes."""

    type: Literal["rotate_key"]
    public_key: Annotated[str, Field(max_length=64)]
    signature: Annotated[str, Field(max_length=128)]


class Ping(_Message):
    type: Literal["ping"]


ClientMessage = Annotated[Event | Resume | RotateKey | Ping, Field(discriminator="type")]
CLIENT_MESSAGES: TypeAdapter[Event | Resume | RotateKey | Ping] = TypeAdapter(ClientMessage)
AUTH: TypeAdapter[Auth] = TypeAdapter(Auth)


def _text(value: Any) -> str:
    # Ids read by asyncpg are its own UUID type, which orjson does not know.
    return str(value)


def frame(kind: str, **fields: Any) -> str:
    return orjson.dumps({"type": kind, **fields}, default=_text).decode()


def error(code: str, detail: str, **fields: Any) -> str:
    return frame("error", code=code, detail=detail, **fields)


def event_frame(
    *, seq: int, client_id: str, kind: str, payload: str, device_id: uuid.UUID | None, created_at: datetime
) -> str:
    """An event as the user's other devices receive it; the payload as it was sent."""
    return orjson.dumps(
        {
            "type": "event",
            "seq": seq,
            "id": client_id,
            "kind": kind,
            "payload": orjson.Fragment(payload),
            "from_device": device_id,
            "created_at": created_at,
        },
        default=_text,
    ).decode()
