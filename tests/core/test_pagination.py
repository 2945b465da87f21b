import base64

import pytest
from pydantic import SecretStr

from keel.core.errors import BadRequest
from keel.core.pagination import CursorCodec


def _respell_final_character(signature: str) -> str:
    """Another base64 spelling of the same bytes: the final character's spare bits differ."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = alphabet.index(signature[-1])
    respelled = signature[:-1] + alphabet[index ^ 1]
    padding = "=" * (-len(signature) % 4)
    assert base64.urlsafe_b64decode(respelled + padding) == base64.urlsafe_b64decode(signature + padding)
    return respelled


def test_a_cursor_round_trips_its_values() -> None:
    codec = CursorCodec(SecretStr("k" * 32))
    cursor = codec.encode("title", ["a", 3])
    assert codec.decode(cursor, "title") == ["a", 3]


def test_only_the_issued_spelling_of_a_signature_is_accepted() -> None:
    codec = CursorCodec(SecretStr("k" * 32))
    payload, signature = codec.encode("title", ["a", 3]).split(".")
    with pytest.raises(BadRequest):
        codec.decode(f"{payload}.{_respell_final_character(signature)}", "title")


def test_a_cursor_signed_with_another_key_is_refused() -> None:
    cursor = CursorCodec(SecretStr("k" * 32)).encode("title", ["a"])
    with pytest.raises(BadRequest):
        CursorCodec(SecretStr("j" * 32)).decode(cursor, "title")
