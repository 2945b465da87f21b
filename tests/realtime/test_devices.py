"""Devices: registered by an Ed25519 public key, listed, revoked; bad keys,
names and types are 4xx problems; another user's device is not found."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from keel.core.platform import platform
from keel.realtime.devices.models import Device
from tests.fixtures.accounts import API, register
from tests.fixtures.realtime import Live, add_device, public_key_of


def a_key() -> str:
    return public_key_of(Ed25519PrivateKey.generate())


async def test_a_user_registers_lists_and_revokes_devices(live: Live) -> None:
    owner = await register(live.http)
    phone = await add_device(live, owner, "phone")
    laptop = await add_device(live, owner, "laptop", type="desktop")
    listed = await live.http.get(f"{API}/devices", headers=owner.headers)
    assert listed.status_code == 200
    assert [(d["id"], d["name"], d["type"]) for d in listed.json()["items"]] == [
        (phone.id, "phone", "phone"),
        (laptop.id, "laptop", "desktop"),
    ]
    assert listed.json()["items"][0]["public_key"] == public_key_of(phone.key)
    assert (await live.http.delete(f"{API}/devices/{phone.id}", headers=owner.headers)).status_code == 204
    listed = await live.http.get(f"{API}/devices", headers=owner.headers)
    assert [d["id"] for d in listed.json()["items"]] == [laptop.id]
    # A revoked device's name may be used again.
    assert (await add_device(live, owner, "phone")).id != phone.id


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "type": "phone", "public_key": "not base64!"}, "public_key"),
        ({"name": "x", "type": "phone", "public_key": base64.b64encode(b"k" * 31).decode()}, "public_key"),
        ({"name": "x", "type": "phone", "public_key": base64.b64encode(b"k" * 33).decode()}, "public_key"),
        ({"name": "x", "type": "toaster", "public_key": "AAAA"}, "type"),
        ({"name": "", "type": "phone", "public_key": "AAAA"}, "name"),
        ({"name": "   ", "type": "phone"}, "name"),
        ({"name": "n" * 101, "type": "phone"}, "name"),
        ({"name": "x", "type": "phone", "public_key": "AAAA", "extra": 1}, "extra"),
    ],
)
async def test_bad_registrations_are_422_problems(live: Live, body: dict[str, object], field: str) -> None:
    owner = await register(live.http)
    body = {"public_key": a_key(), **body} if "public_key" not in body else body
    response = await live.http.post(f"{API}/devices", json=body, headers=owner.headers)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in response.text


async def test_names_are_unique_per_user_and_devices_are_bounded(
    live_keel: Callable[..., Awaitable[Live]],
) -> None:
    live = await live_keel(realtime_max_devices_per_user=2)
    owner, other = await register(live.http), await register(live.http)
    await add_device(live, owner, "phone")
    again = await live.http.post(
        f"{API}/devices", json={"name": "phone", "type": "tablet", "public_key": a_key()}, headers=owner.headers
    )
    assert again.status_code == 409
    await add_device(live, other, "phone")  # another user's names are theirs
    await add_device(live, owner, "second")
    third = await live.http.post(
        f"{API}/devices", json={"name": "third", "type": "tablet", "public_key": a_key()}, headers=owner.headers
    )
    assert third.status_code == 409


async def test_another_users_device_is_not_found(live: Live) -> None:
    owner, stranger = await register(live.http), await register(live.http)
    device = await add_device(live, owner)
    gone = await live.http.delete(f"{API}/devices/{device.id}", headers=stranger.headers)
    assert gone.status_code == 404
    listed = await live.http.get(f"{API}/devices", headers=stranger.headers)
    assert listed.json()["items"] == []
    unauthenticated = await live.http.get(f"{API}/devices")
    assert unauthenticated.status_code == 401


async def test_the_database_refuses_unknown_types_too(live: Live) -> None:
    owner = await register(live.http)
    with pytest.raises(IntegrityError):
        async with platform(live.app).database.session(write=True) as session, session.begin():
            await session.execute(
                insert(Device).values(user_id=uuid.UUID(owner.id), name="x", type="toaster", public_key=b"k" * 32)
            )
