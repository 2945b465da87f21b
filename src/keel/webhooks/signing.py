"""Standard Webhooks signatures (https://www.standardwebhooks.com).

A delivery carries ``webhook-id`` (the same on every retry of one message),
``webhook-timestamp`` (Unix seconds of this attempt) and
``webhook-signature``: ``v1,`` and the base64 HMAC-SHA256, keyed with the
endpoint's secret, of ``"{id}.{timestamp}.{body}"``. While a rotated secret's
overlap lasts, the old and the new secret each sign, space-separated, so a
receiver holding either verifies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # noqa: S105 (the secrets' prefix, not a secret)
_SECRET_BYTES = 32


def new_signing_secret() -> str:
    """``whsec_`` and 32 random bytes in base64, as Standard Webhooks libraries read it."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode("ascii")


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """One ``v1,`` signature of ``body`` as sent in message ``message_id`` at ``timestamp``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(signing_secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value: a signature per secret, space-separated."""
    return " ".join(sign(secret, message_id, timestamp, body) for secret in signing_secrets)


def headers(signing_secrets: Sequence[str], message_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(signing_secrets, message_id, timestamp, body),
    }
