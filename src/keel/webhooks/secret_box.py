"""Endpoint signing secrets, encrypted at rest.

keel must keep a signing secret it can read back (it signs with it), so it is
stored sealed with AES-GCM under a key derived from ``KEEL_SECRET_KEY``: a
copy of the database alone reveals no secret. Keys in
``KEEL_PREVIOUS_SECRET_KEYS`` still open what they sealed, so the secret key
can be rotated; a secret is sealed again under the current key whenever it
is written.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from pydantic import SecretStr

_FORMAT = "v1."
_NONCE_BYTES = 12
_PURPOSE = b"keel webhook signing secrets"


def _derive(secret_key: SecretStr) -> AESGCM:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_PURPOSE).derive(
        secret_key.get_secret_value().encode()
    )
    return AESGCM(key)


class SecretBox:
    def __init__(self, secret_key: SecretStr, previous_keys: Sequence[SecretStr] = ()) -> None:
        self._current = _derive(secret_key)
        self._all = [self._current, *(_derive(key) for key in previous_keys)]

    def seal(self, plaintext: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._current.encrypt(nonce, plaintext.encode(), _PURPOSE)
        return _FORMAT + base64.urlsafe_b64encode(sealed).decode("ascii")

    def open(self, sealed: str) -> str:
        """The plaintext; ValueError when no known key sealed it."""
        raw = base64.urlsafe_b64decode(sealed.removeprefix(_FORMAT))
        nonce, ciphertext = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
        for box in self._all:
            try:
                return box.decrypt(nonce, ciphertext, _PURPOSE).decode()
            except InvalidTag:
                continue
        raise ValueError("sealed with a key keel no longer has")
