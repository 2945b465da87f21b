"""The event types a webhook endpoint may subscribe to, each with the JSON
schema of its ``data``: what keel emits to the outbox, named as it is there."""

from __future__ import annotations

from typing import Any

_ID = {"type": "string", "format": "uuid"}
_VERSION = {"type": "integer", "minimum": 1}


def _object(description: str, **properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": list(properties),
    }


def _life_cycle(noun: str, **fields: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A resource's created / updated / deleted / restored events."""
    return {
        f"{noun}.{kind}": _object(f"A {noun} was {kind}.", id=_ID, version=_VERSION, **fields)
        for kind in ("created", "updated", "deleted", "restored")
    }


# Values as the emitting domain writes them (its own API documents the choices).
_ROLE = {"type": "string", "description": "The member's role in the org."}
_STATUS = {"type": "string", "description": "The resource's status."}
_TEXT = {"type": "string"}

PING = "ping"

EVENT_TYPES: dict[str, dict[str, Any]] = {
    **_life_cycle("task", title=_TEXT, status=_STATUS),
    **_life_cycle("project", name=_TEXT),
    **_life_cycle("report", title=_TEXT, status=_STATUS),
    **_life_cycle("bookmark", url={"type": "string", "format": "uri"}, title=_TEXT),
    "member.added": _object("Someone joined the org.", user_id=_ID, role=_ROLE),
    "member.updated": _object("A member's role changed.", user_id=_ID, role=_ROLE),
    "member.removed": _object("Someone left the org or was removed.", user_id=_ID),
    "device.registered": _object(
        "A member registered a device (in their personal org).", user_id=_ID, device_id=_ID, name=_TEXT, type=_TEXT
    ),
    "device.revoked": _object("A member revoked a device (in their personal org).", user_id=_ID, device_id=_ID),
    "device.event": _object(
        "A member's device sent an event to their other devices (in their personal org).",
        user_id=_ID,
        device_id={"type": ["string", "null"], "format": "uuid", "description": "Null for a browser session."},
        seq={"type": "integer", "minimum": 1, "description": "Its place in the user's stream."},
        id={"type": "string", "description": "The id its client gave it."},
        kind=_TEXT,
        payload={"description": "The event's JSON payload, as sent."},
    ),
    PING: _object("Sent by POST /webhooks/{id}/test: the endpoint is reachable.", message=_TEXT),
}
