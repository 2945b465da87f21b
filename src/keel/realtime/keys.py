"""Ed25519 device keys: parsing a public key as clients send it, checking a signature."""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64


def decode_base64(text: str, *, length: int, what: str) -> bytes:
    """Standard base64 of exactly ``length`` bytes, else ValueError naming ``what``."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError(f"{what} must be standard base64") from None
    if len(raw) != length:
        raise ValueError(f"{what} must be {length} bytes, not {len(raw)}")
    return raw


def parse_public_key(text: str) -> bytes:
    """A raw Ed25519 public key from its base64, checked by `cryptography`."""
    raw = decode_base64(text, length=PUBLIC_KEY_BYTES, what="public_key")
    try:
        Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise ValueError("public_key is not an Ed25519 public key") from None
    return raw


def signed_by(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether ``signature`` is ``public_key``'s Ed25519 signature of ``message``."""
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True


def encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
