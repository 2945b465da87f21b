"""JWT verification rejects anything keel did not issue; property tests for tokens and roles."""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import timedelta

import httpx
import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from keel.config import AuthSettings
from keel.core import security
from keel.core.principal import Role
from keel.core.security import InvalidToken, TokenSigner
from tests.fixtures.accounts import API, register

KEY = SecretStr("k" * 40)
OTHER = SecretStr("o" * 40)


def signer(key: SecretStr = KEY, **settings: object) -> TokenSigner:
    return TokenSigner(key, AuthSettings(**settings))  # type: ignore[arg-type]


def b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


async def me_with(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get(f"{API}/me", headers={"authorization": f"Bearer {token}"})


def _claims(account_id: str, **changes: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {
        "iss": "keel",
        "aud": "keel-api",
        "sub": account_id,
        "iat": now,
        "exp": now + 600,
        "jti": uuid.uuid4().hex,
    }
    claims.update(changes)
    return claims


@pytest.mark.readiness("auth.jwt_rejects_forgeries")
async def test_forged_and_foreign_tokens_are_401(client: httpx.AsyncClient, settings) -> None:  # type: ignore[no-untyped-def]
    account = await register(client)
    real_key = settings.signing_key.get_secret_value()
    kid = jwt.get_unverified_header(account.access_token)["kid"]
    header = {"kid": kid}
    forged = {
        "wrong key": jwt.encode(_claims(account.id), "x" * 40, algorithm="HS256", headers=header),
        "expired": jwt.encode(
            _claims(account.id, exp=int(time.time()) - 120), real_key, algorithm="HS256", headers=header
        ),
        "wrong audience": jwt.encode(_claims(account.id, aud="other-api"), real_key, algorithm="HS256", headers=header),
        "wrong issuer": jwt.encode(_claims(account.id, iss="evil"), real_key, algorithm="HS256", headers=header),
        "no jti": jwt.encode(
            {k: v for k, v in _claims(account.id).items() if k != "jti"}, real_key, algorithm="HS256", headers=header
        ),
        "alg none": f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{b64(_claims(account.id))}.",
        "unknown kid": jwt.encode(_claims(account.id), real_key, algorithm="HS256", headers={"kid": "nope"}),
        # Validly signed, but living longer than keel ever issues a token for.
        "exp in 10^20 s": jwt.encode(_claims(account.id, exp=10**20), real_key, algorithm="HS256", headers=header),
        "lifetime past the TTL": jwt.encode(
            _claims(account.id, exp=int(time.time()) + settings.auth.access_token_ttl_s + 3600),
            real_key,
            algorithm="HS256",
            headers=header,
        ),
        "issued in the future": jwt.encode(
            _claims(account.id, iat=int(time.time()) + 3600, exp=int(time.time()) + 3900),
            real_key,
            algorithm="HS256",
            headers=header,
        ),
        "garbage": "not.a.jwt",
    }
    header_b64, payload_b64, signature = account.access_token.split(".")
    tampered_payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=="))
    tampered_payload["sub"] = str(uuid.uuid4())
    forged["tampered payload"] = f"{header_b64}.{b64(tampered_payload)}.{signature}"
    for name, token in forged.items():
        response = await me_with(client, token)
        assert response.status_code == 401, name
        assert response.headers["www-authenticate"] == "Bearer", name
        assert response.headers["content-type"] == "application/problem+json", name
    assert (await me_with(client, account.access_token)).status_code == 200


async def test_missing_and_malformed_authorization_is_401(client: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {"authorization": "Basic dXNlcjpwYXNz"},
        {"authorization": "Bearer "},
        {"x-api-key": "keel_nope"},
    ):
        response = await client.get(f"{API}/me", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


def test_small_leeway_accepts_just_expired_tokens_only() -> None:
    lenient = signer(jwt_leeway_s=30)
    token = jwt.encode(
        _claims(str(uuid.uuid4()), exp=int(time.time()) - 5),
        KEY.get_secret_value(),
        algorithm="HS256",
        headers={"kid": jwt.get_unverified_header(lenient.issue("x").token)["kid"]},
    )
    assert lenient.verify(token)["exp"] < time.time()
    with pytest.raises(InvalidToken):
        signer(jwt_leeway_s=0).verify(token)


@pytest.mark.readiness("auth.key_rotation")
def test_previous_keys_verify_until_removed() -> None:
    old_token = signer(OTHER).issue("user-1").token
    rotated = signer(KEY, previous_secret_keys=[OTHER])
    assert rotated.verify(old_token)["sub"] == "user-1"
    new_token = rotated.issue("user-2").token
    assert jwt.get_unverified_header(new_token)["kid"] != jwt.get_unverified_header(old_token)["kid"]
    with pytest.raises(InvalidToken):
        signer(KEY).verify(old_token)


@given(
    subject=st.text(min_size=1, max_size=64),
    extra=st.dictionaries(st.sampled_from(["org", "scope"]), st.text(max_size=20)),
)
def test_issued_tokens_round_trip(subject: str, extra: dict[str, str]) -> None:
    token_signer = signer()
    claims = token_signer.verify(token_signer.issue(subject, **extra).token)
    assert claims["sub"] == subject
    assert {k: claims[k] for k in extra} == extra
    assert claims["aud"] == "keel-api"
    assert claims["iss"] == "keel"


@given(token=st.text(max_size=300))
def test_arbitrary_strings_never_verify(token: str) -> None:
    with pytest.raises(InvalidToken):
        signer().verify(token)


@given(a=st.sampled_from(list(Role)), b=st.sampled_from(list(Role)), c=st.sampled_from(list(Role)))
def test_role_order_is_a_total_order(a: Role, b: Role, c: Role) -> None:
    assert a.at_least(a)
    assert a.at_least(b) or b.at_least(a)
    if a.at_least(b) and b.at_least(a):
        assert a is b
    if a.at_least(b) and b.at_least(c):
        assert a.at_least(c)
    assert Role.OWNER.at_least(a)
    assert a.at_least(Role.VIEWER)


@pytest.mark.readiness("auth.verified_token_cache")
def test_a_verified_token_is_remembered_only_until_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    token_signer = signer(jwt_leeway_s=0)
    issued = token_signer.issue("user-1")
    assert token_signer.verify(issued.token)["sub"] == "user-1"
    assert token_signer.verify(issued.token)["sub"] == "user-1"  # answered from memory
    later = issued.expires_at + timedelta(seconds=1)
    monkeypatch.setattr(security, "now", lambda: later)
    with pytest.raises(InvalidToken):
        token_signer.verify(issued.token)
