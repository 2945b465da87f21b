"""Registration, login, refresh rotation with reuse detection, logout."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from keel.config import AuthSettings, RateLimitSettings
from keel.core.platform import platform
from keel.identity.audit.models import AuditEvent
from keel.identity.users.models import User
from keel.main import create_app
from tests.fixtures.accounts import API, PASSWORD, register, unique_email

PROBLEM = "application/problem+json"


async def test_register_returns_tokens_and_creates_a_personal_org(client: httpx.AsyncClient) -> None:
    email = unique_email()
    response = await client.post(f"{API}/auth/register", json={"email": email, "password": PASSWORD, "name": "Ada"})
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"user", "access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["user"]["email"] == email
    assert "password" not in response.text
    me = await client.get(f"{API}/me", headers={"authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    [membership] = me.json()["memberships"]
    assert membership["role"] == "owner"
    assert membership["personal"] is True


@pytest.mark.readiness("auth.password_policy")
@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short1", "at least 10 characters"),
        ("1234567890", "too common"),
        ("qwertyuiop", "too common"),
        ("x" * 300, "at most 256"),
    ],
)
async def test_weak_passwords_are_422(client: httpx.AsyncClient, password: str, message: str) -> None:
    response = await client.post(
        f"{API}/auth/register", json={"email": unique_email(), "password": password, "name": "A"}
    )
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert message in response.json()["detail"]
    assert response.json()["errors"][0]["loc"] == ["body", "password"]
    assert password not in response.text


async def test_every_problem_of_a_registration_is_listed_at_once(client: httpx.AsyncClient) -> None:
    body = {"email": "not-an-email", "password": "short", "name": "A"}
    response = await client.post(f"{API}/auth/register", json=body)
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert [error["loc"] for error in errors] == [["body", "email"], ["body", "password"]]
    assert "at least 10 characters" in errors[1]["msg"]
    assert "short" not in response.text


async def test_password_equal_to_email_is_refused(client: httpx.AsyncClient) -> None:
    email = "longlocalpart@example.com"
    for password in (email, email.upper(), "longlocalpart"):
        response = await client.post(f"{API}/auth/register", json={"email": email, "password": password, "name": "A"})
        assert response.status_code == 422
        assert "email" in response.json()["detail"]


@pytest.mark.parametrize(
    "email",
    ["not-an-email", "a@b", "a" * 250 + "@example.com", "x@" + "d" * 300 + ".com", "'; DROP TABLE users; --@x.com"],
)
async def test_invalid_or_oversized_emails_are_422(client: httpx.AsyncClient, email: str) -> None:
    response = await client.post(f"{API}/auth/register", json={"email": email, "password": PASSWORD, "name": "A"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM


@pytest.mark.readiness("auth.email_unique_case_insensitive")
async def test_email_is_unique_case_insensitively(client: httpx.AsyncClient) -> None:
    email = unique_email("Mixed.Case")
    await register(client, email)
    response = await client.post(
        f"{API}/auth/register", json={"email": email.upper(), "password": PASSWORD, "name": "B"}
    )
    assert response.status_code == 409
    login = await client.post(f"{API}/auth/login", json={"email": email.lower(), "password": PASSWORD})
    assert login.status_code == 200


async def test_unicode_emails_are_stored_as_given_and_compared_lowercased(client: httpx.AsyncClient) -> None:
    # A Cyrillic "a" (U+0430) in the domain looks Latin: kept as given, distinct from the Latin one.
    homoglyph = f"Ünïcode-{unique_email()[:8]}@ex\u0430mple.com"
    account = await register(client, homoglyph)
    me = (await client.get(f"{API}/me", headers=account.headers)).json()
    assert me["email"] == homoglyph
    login = await client.post(f"{API}/auth/login", json={"email": homoglyph.lower(), "password": PASSWORD})
    assert login.status_code == 200
    latin = homoglyph.replace("\u0430", "a")
    assert (await client.post(f"{API}/auth/login", json={"email": latin, "password": PASSWORD})).status_code == 401


@pytest.mark.readiness("auth.concurrent_register")
async def test_concurrent_registration_with_one_email_creates_one_account(client: httpx.AsyncClient) -> None:
    email = unique_email("race")
    payload = {"email": email, "password": PASSWORD, "name": "Racer"}
    responses = await asyncio.gather(*(client.post(f"{API}/auth/register", json=payload) for _ in range(4)))
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]


@pytest.mark.readiness("auth.generic_login_error")
async def test_wrong_password_and_unknown_email_get_the_same_answer(client: httpx.AsyncClient, log_lines) -> None:  # type: ignore[no-untyped-def]
    account = await register(client)
    wrong = await client.post(f"{API}/auth/login", json={"email": account.email, "password": "wrong-password-1"})
    unknown = await client.post(f"{API}/auth/login", json={"email": unique_email(), "password": "wrong-password-1"})
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"

    def strip(body: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in body.items() if k != "request_id"}

    assert strip(wrong.json()) == strip(unknown.json())
    assert "wrong-password-1" not in log_lines()
    assert "auth.login_failed" in log_lines()


async def test_login_rehashes_when_hash_parameters_change(make_settings, make_client, database_url) -> None:  # type: ignore[no-untyped-def]
    client = await make_client(create_app(make_settings()))
    account = await register(client)
    stronger = AuthSettings(argon2_time_cost=2, argon2_memory_kib=2048, argon2_parallelism=1)
    upgraded_app = create_app(make_settings(auth=stronger))
    upgraded = await make_client(upgraded_app)
    response = await upgraded.post(f"{API}/auth/login", json={"email": account.email, "password": PASSWORD})
    assert response.status_code == 200
    async with platform(upgraded_app).database.session(write=False) as session:
        user = await session.scalar(select(User).where(User.email == account.email))
        assert user is not None
        assert "m=2048,t=2" in (user.password_hash or "")


@pytest.mark.readiness("auth.login_rate_limit")
async def test_login_is_rate_limited_per_account_across_addresses(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(
        rate_limit=RateLimitSettings(rate_limit_auth="1000/minute", rate_limit_login_account="3/minute")
    )
    client = await make_client(create_app(settings))
    account = await register(client)
    statuses = []
    for attempt in range(4):
        response = await client.post(
            f"{API}/auth/login",
            json={"email": account.email, "password": "guess-number-" + str(attempt)},
            headers={"x-forwarded-for": f"198.51.100.{attempt}"},
        )
        statuses.append(response.status_code)
    assert statuses == [401, 401, 401, 429]


async def refresh(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.post(f"{API}/auth/refresh", json={"refresh_token": token})


@pytest.mark.readiness("auth.refresh_rotation")
async def test_refresh_rotates_and_the_new_pair_works(client: httpx.AsyncClient) -> None:
    account = await register(client)
    response = await refresh(client, account.refresh_token)
    assert response.status_code == 200
    pair = response.json()
    assert pair["refresh_token"] != account.refresh_token
    assert (
        await client.get(f"{API}/me", headers={"authorization": f"Bearer {pair['access_token']}"})
    ).status_code == 200
    assert (await refresh(client, pair["refresh_token"])).status_code == 200


@pytest.mark.readiness("auth.refresh_reuse_detection")
async def test_reusing_a_spent_refresh_token_revokes_the_family_and_is_audited(make_settings, make_client) -> None:  # type: ignore[no-untyped-def]
    app = create_app(
        make_settings(
            auth=AuthSettings(refresh_reuse_grace_s=0, argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1)
        )
    )
    client = await make_client(app)
    account = await register(client)
    successor = (await refresh(client, account.refresh_token)).json()["refresh_token"]
    await asyncio.sleep(0.05)
    replay = await refresh(client, account.refresh_token)
    assert replay.status_code == 401
    assert replay.headers["content-type"] == PROBLEM
    # The legitimate holder's newer token died with the family.
    assert (await refresh(client, successor)).status_code == 401
    async with platform(app).database.session(write=False) as session:
        actions = (
            await session.scalars(select(AuditEvent.action).where(AuditEvent.actor_user_id == uuid.UUID(account.id)))
        ).all()
    assert "auth.refresh_reuse_detected" in actions


@pytest.mark.readiness("auth.refresh_grace")
async def test_two_tabs_refreshing_at_once_both_stay_logged_in(client: httpx.AsyncClient) -> None:
    account = await register(client)
    first, second = await asyncio.gather(refresh(client, account.refresh_token), refresh(client, account.refresh_token))
    assert first.status_code == second.status_code == 200
    assert first.json()["refresh_token"] == second.json()["refresh_token"]
    assert (await refresh(client, first.json()["refresh_token"])).status_code == 200


@pytest.mark.readiness("auth.logout")
async def test_logout_revokes_the_session(client: httpx.AsyncClient) -> None:
    account = await register(client)
    response = await client.post(f"{API}/auth/logout", json={"refresh_token": account.refresh_token})
    assert response.status_code == 204
    assert (await refresh(client, account.refresh_token)).status_code == 401
    again = await client.post(f"{API}/auth/logout", json={"refresh_token": account.refresh_token})
    assert again.status_code == 204


@pytest.mark.parametrize("token", ["", "x" * 500, "'; DROP TABLE refresh_tokens; --", '{"$ne": null}'])
async def test_garbage_refresh_tokens_are_4xx(client: httpx.AsyncClient, token: str) -> None:
    response = await refresh(client, token)
    assert response.status_code in (401, 422)
    assert response.headers["content-type"] == PROBLEM
