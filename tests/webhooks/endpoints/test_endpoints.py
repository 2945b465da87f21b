"""Webhook endpoints: admin-only CRUD, secrets shown once and sealed at rest,
URLs that cannot reach inside the network, rotation with an overlap."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select

from keel.config import Environment, Settings, WebhookSettings
from keel.core.clock import now
from keel.core.errors import ValidationFailed
from keel.core.platform import platform
from keel.main import create_app
from keel.webhooks.endpoints.models import WebhookEndpoint
from keel.webhooks.endpoints.service import EndpointPolicy, signing_secrets
from keel.webhooks.secret_box import SecretBox
from tests.fixtures.accounts import API, Account, add_member, create_org, register

HOOK = "https://hooks.example.com/keel"


def hooks_url(org_id: str) -> str:
    return f"{API}/orgs/{org_id}/webhooks"


async def create_endpoint(client: httpx.AsyncClient, org_id: str, admin: Account, **body: Any) -> dict[str, Any]:
    response = await client.post(hooks_url(org_id), json={"url": HOOK, **body}, headers=admin.headers)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_an_admin_creates_lists_updates_and_deletes_endpoints(client: httpx.AsyncClient, app: FastAPI) -> None:
    owner = await register(client)
    org_id = await create_org(client, owner)
    created = await create_endpoint(
        client, org_id, owner, event_types=["task.updated", "task.created"], description="CI"
    )
    secret = created["secret"]
    assert secret.startswith("whsec_")
    assert created["event_types"] == ["task.created", "task.updated"]
    assert created["enabled"] is True

    listed = await client.get(hooks_url(org_id), headers=owner.headers)
    assert listed.status_code == 200
    assert [item["id"] for item in listed.json()["items"]] == [created["id"]]
    assert secret not in listed.text
    one = await client.get(f"{hooks_url(org_id)}/{created['id']}", headers=owner.headers)
    assert one.json()["description"] == "CI"
    assert "secret" not in one.json()

    # Stored sealed: the database holds no usable secret.
    async with platform(app).database.session(write=False) as session:
        stored = await session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.id == uuid.UUID(created["id"])))
    assert stored is not None
    assert secret not in stored.secret_sealed
    assert secret.removeprefix("whsec_") not in stored.secret_sealed

    patched = await client.patch(
        f"{hooks_url(org_id)}/{created['id']}", json={"enabled": False, "event_types": []}, headers=owner.headers
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["enabled"] is False
    assert patched.json()["event_types"] == []

    deleted = await client.delete(f"{hooks_url(org_id)}/{created['id']}", headers=owner.headers)
    assert deleted.status_code == 204
    assert (await client.get(f"{hooks_url(org_id)}/{created['id']}", headers=owner.headers)).status_code == 404

    audit = await client.get(f"{API}/orgs/{org_id}/audit-log", headers=owner.headers)
    actions = {entry["action"] for entry in audit.json()["items"]}
    assert {"webhook.endpoint_created", "webhook.endpoint_updated", "webhook.endpoint_deleted"} <= actions
    assert secret not in audit.text


async def test_members_cannot_manage_endpoints_and_other_orgs_see_nothing(client: httpx.AsyncClient) -> None:
    owner, member, stranger = await register(client), await register(client), await register(client)
    org_id = await create_org(client, owner)
    await add_member(client, org_id, owner, member, "member")
    created = await create_endpoint(client, org_id, owner)
    assert (await client.get(hooks_url(org_id), headers=member.headers)).status_code == 403
    assert (await client.post(hooks_url(org_id), json={"url": HOOK}, headers=member.headers)).status_code == 403
    # Another org's endpoint is a 404, from its own org's URL too.
    assert (await client.get(f"{hooks_url(org_id)}/{created['id']}", headers=stranger.headers)).status_code == 404
    foreign = f"{hooks_url(stranger.personal_org_id)}/{created['id']}"
    assert (await client.get(foreign, headers=stranger.headers)).status_code == 404
    assert (await client.delete(foreign, headers=stranger.headers)).status_code == 404


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("not a url", "http or https"),
        ("ftp://hooks.example.com/x", "http or https"),
        ("https://127.0.0.1/hook", "private"),
        ("https://[::1]/hook", "private"),
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.0.10:8443/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "private"),
        ("https://[::ffff:127.0.0.1]/hook", "private"),
        ("https://224.0.0.1/hook", "private"),
        ("https://localhost/hook", "local host"),
        ("https://api.localhost/hook", "local host"),
        ("https://metadata.google.internal/computeMetadata", "local host"),
        ("https://intranet/hook", "local host"),
        ("https://user:pass@hooks.example.com/x", "credentials"),
        ("https://hooks.example.com:99999/x", "valid URL"),
        ("https://" + "a" * 2050 + ".com/", "2048"),
    ],
)
async def test_urls_that_could_reach_inside_the_network_are_refused(
    client: httpx.AsyncClient, url: str, reason: str
) -> None:
    owner = await register(client)
    response = await client.post(hooks_url(owner.personal_org_id), json={"url": url}, headers=owner.headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert reason in response.text


async def test_bad_input_is_a_422_problem(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    url = hooks_url(owner.personal_org_id)
    for body in (
        {"url": HOOK, "event_types": ["task.created", "no.such.event"]},
        {"url": HOOK, "event_types": [f"task.{n}" for n in range(10_000)]},
        {"url": HOOK, "description": "x" * 2048},
        {"url": HOOK, "unknown": True},
        {},
    ):
        response = await client.post(url, json=body, headers=owner.headers)
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith("application/problem+json")
    for change in ({"url": None}, {"enabled": 0}, {"enabled": "false"}):
        patch = await client.patch(f"{url}/{uuid.uuid4()}", json=change, headers=owner.headers)
        assert patch.status_code == 422, change


async def test_an_org_has_a_bounded_number_of_endpoints(
    make_settings: Callable[..., Settings], make_client: Callable[..., Any]
) -> None:
    client = await make_client(create_app(make_settings(webhooks=WebhookSettings(webhook_max_endpoints_per_org=2))))
    owner = await register(client)
    for _ in range(2):
        await create_endpoint(client, owner.personal_org_id, owner)
    response = await client.post(hooks_url(owner.personal_org_id), json={"url": HOOK}, headers=owner.headers)
    assert response.status_code == 409


async def test_outside_development_and_test_only_https_is_accepted(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    owner = await register(client)
    plain = await client.post(
        hooks_url(owner.personal_org_id), json={"url": "http://hooks.example.com/x"}, headers=owner.headers
    )
    assert plain.status_code == 201
    for env in (Environment.STAGING, Environment.PRODUCTION):
        deployed = EndpointPolicy.for_settings(settings.model_copy(update={"env": env}))
        with pytest.raises(ValidationFailed, match="must use https"):
            deployed.url("http://hooks.example.com/x")
        assert deployed.url(HOOK) == HOOK


async def test_rotating_the_secret_signs_with_both_for_the_overlap(client: httpx.AsyncClient, app: FastAPI) -> None:
    owner = await register(client)
    created = await create_endpoint(client, owner.personal_org_id, owner)
    rotated = await client.post(
        f"{hooks_url(owner.personal_org_id)}/{created['id']}/rotate-secret", headers=owner.headers
    )
    assert rotated.status_code == 201, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret != created["secret"]
    async with platform(app).database.session(write=False) as session:
        endpoint = await session.get(WebhookEndpoint, uuid.UUID(created["id"]))
    assert endpoint is not None
    settings = platform(app).settings
    box = SecretBox(settings.signing_key, settings.auth.previous_secret_keys)
    assert signing_secrets(endpoint, box, now()) == [new_secret, created["secret"]]
    assert signing_secrets(endpoint, box, now() + timedelta(days=2)) == [new_secret]


def test_sealed_secrets_open_under_a_previous_key_after_rotation() -> None:
    old, new = SecretStr("o" * 48), SecretStr("n" * 48)
    sealed = SecretBox(old).seal("whsec_abc")
    assert SecretBox(new, [old]).open(sealed) == "whsec_abc"
    with pytest.raises(ValueError, match="no longer"):
        SecretBox(new).open(sealed)


async def test_the_event_type_catalog_lists_each_type_with_its_schema(client: httpx.AsyncClient) -> None:
    owner = await register(client)
    response = await client.get(f"{API}/webhooks/event-types", headers=owner.headers)
    assert response.status_code == 200
    catalog = {item["name"]: item["data_schema"] for item in response.json()["items"]}
    assert {"task.created", "task.deleted", "member.added", "ping"} <= set(catalog)
    assert catalog["task.created"]["required"] == ["id", "version", "title", "status"]
    assert (await client.get(f"{API}/webhooks/event-types")).status_code == 401
