"""Cryptographic building blocks: password hashing, JWTs, opaque secrets.

Nothing here touches the database; identity composes these into accounts,
sessions and API keys.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import SecretStr

from keel.config import AuthSettings
from keel.core.clock import now

_JWT_ALGORITHM = "HS256"  # pinned: verification never trusts the token's own "alg"
_REQUIRED_CLAIMS = ["iss", "aud", "sub", "exp", "iat", "jti"]


class PasswordHasher:
    """argon2id, off the event loop, with a cap on concurrent hashes.

    Each hash costs ~100 ms of CPU: unbounded, a burst of logins would starve
    every other request.
    """

    def __init__(self, settings: AuthSettings) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=settings.argon2_time_cost,
                    memory_cost=settings.argon2_memory_kib,
                    parallelism=settings.argon2_parallelism,
                ),
            )
        )
        self._slots = asyncio.Semaphore(settings.max_concurrent_hashes)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        """(matches, replacement hash when the parameters changed).

        Without a stored hash (unknown account) a dummy hash is verified, so
        the answer takes as long as for a real account.
        """
        if password_hash is None:
            if self._dummy is None:
                self._dummy = await self.hash(secrets.token_urlsafe(16))
            async with self._slots:
                await asyncio.to_thread(self._hash.verify, password, self._dummy)
            return False, None
        async with self._slots:
            return await asyncio.to_thread(self._hash.verify_and_update, password, password_hash)


class InvalidToken(Exception):
    """The token is malformed, forged, expired or not meant for keel."""


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_at: datetime
    jti: str


def _key_id(key: SecretStr) -> str:
    """A stable, non-reversible name for a signing key (the JWT ``kid``)."""
    return hashlib.sha256(b"keel-kid:" + key.get_secret_value().encode()).hexdigest()[:16]


_VERIFIED_TOKENS_KEPT = 10_000


class TokenSigner:
    """Issues and verifies JWT access tokens, with signing-key rotation.

    The current secret key signs; previous keys (``KEEL_PREVIOUS_SECRET_KEYS``)
    still verify, found by the token's ``kid``.
    """

    def __init__(self, current_key: SecretStr, settings: AuthSettings) -> None:
        self.settings = settings
        self._current_kid = _key_id(current_key)
        self._keys = {_key_id(key): key.get_secret_value() for key in [*settings.previous_secret_keys, current_key]}
        # Tokens already verified, until they expire: a token's bytes fully
        # determine its claims, so checking its signature again proves nothing
        # new (a client sends the same token on every request).
        self._verified: dict[str, dict[str, Any]] = {}

    def issue(self, subject: str, **claims: Any) -> AccessToken:
        issued_at = now()
        expires_at = issued_at + timedelta(seconds=self.settings.access_token_ttl_s)
        jti = uuid.uuid4().hex
        payload = {
            **claims,
            "iss": self.settings.jwt_issuer,
            "aud": self.settings.jwt_audience,
            "sub": subject,
            "iat": int(issued_at.timestamp()),
            "exp": int(expires_at.timestamp()),
            "jti": jti,
        }
        token = jwt.encode(
            payload, self._keys[self._current_kid], algorithm=_JWT_ALGORITHM, headers={"kid": self._current_kid}
        )
        return AccessToken(token=token, expires_at=expires_at, jti=jti)

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims; raises InvalidToken for anything not issued here."""
        claims = self._verified.get(token)
        if claims is not None:
            if claims["exp"] + self.settings.jwt_leeway_s > now().timestamp():
                return claims
            del self._verified[token]
            raise InvalidToken("ExpiredSignatureError")
        claims = self._decode(token)
        if len(self._verified) >= _VERIFIED_TOKENS_KEPT:
            self._verified.clear()  # cheaper than LRU bookkeeping; refills at one decode per client
        self._verified[token] = claims
        return claims

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
            key = self._keys.get(str(header.get("kid")))
            if key is None:
                raise InvalidToken("unknown signing key")
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[_JWT_ALGORITHM],
                audience=self.settings.jwt_audience,
                issuer=self.settings.jwt_issuer,
                leeway=self.settings.jwt_leeway_s,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(type(exc).__name__) from None
        # A valid signature is not a licence to live forever: keel issues
        # tokens for its configured lifetime, from now, never longer.
        leeway = self.settings.jwt_leeway_s
        issued_at, expires_at = claims["iat"], claims["exp"]
        if not isinstance(issued_at, int | float) or not isinstance(expires_at, int | float):
            raise InvalidToken("non-numeric iat or exp")
        if expires_at - issued_at > self.settings.access_token_ttl_s + leeway:
            raise InvalidToken("lifetime beyond the configured access token TTL")
        if issued_at > now().timestamp() + leeway:
            raise InvalidToken("issued in the future")
        return claims


def new_secret(prefix: str = "", nbytes: int = 32) -> str:
    """A URL-safe random secret (``nbytes`` of entropy) with an optional prefix."""
    return prefix + secrets.token_urlsafe(nbytes)


def hash_secret(secret: str) -> str:
    """Lookup hash of a high-entropy secret (refresh token, API key).

    These secrets carry ≥ 256 bits of randomness, so a fast hash is safe and
    lets the database find them by an indexed equality.
    """
    return hashlib.sha256(secret.encode()).hexdigest()


def derive_secret(key: SecretStr, purpose: str, material: str) -> str:
    """A secret deterministically derived from another (HMAC-SHA256), URL-safe."""
    digest = hmac.new(key.get_secret_value().encode(), f"{purpose}:{material}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
