"""Email normalization and password policy, each a clear 422 on failure."""

from __future__ import annotations

import unicodedata
from functools import cache

from email_validator import EmailNotValidError, validate_email
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from keel.core.errors import ValidationFailed

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256
MAX_EMAIL_LENGTH = 254


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, extra={"errors": [{"loc": ["body", field], "msg": message}]})


def normalize_email(raw: str) -> tuple[str, str]:
    """(email as given, lookup key). Stored as given — a homoglyph domain is
    kept, not rewritten — and compared in lowercase."""
    email = unicodedata.normalize("NFC", raw.strip())
    if len(email) > MAX_EMAIL_LENGTH:
        raise _invalid("email", f"The email address is longer than {MAX_EMAIL_LENGTH} characters.")
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        raise _invalid("email", "The email address is not valid.") from None
    return email, email.lower()


@cache
def _common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords, bundled with zxcvbn."""
    return frozenset(FREQUENCY_LISTS["passwords"])


def check_password(password: str, email: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise _invalid("password", f"The password needs at least {MIN_PASSWORD_LENGTH} characters.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise _invalid("password", f"The password may have at most {MAX_PASSWORD_LENGTH} characters.")
    lowered = password.lower()
    local_part = email.lower().split("@", 1)[0]
    if lowered in (email.lower(), local_part):
        raise _invalid("password", "The password must not be your email address.")
    if lowered in _common_passwords():
        raise _invalid("password", "The password is too common; choose another.")
