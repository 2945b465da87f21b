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


def _invalid(*problems: tuple[str, str]) -> ValidationFailed:
    """One 422 listing every (field, message) problem found."""
    detail = problems[0][1] if len(problems) == 1 else "Several fields are invalid; `errors` lists each."
    return ValidationFailed(detail, extra={"errors": [{"loc": ["body", f], "msg": m} for f, m in problems]})


def _email_problem(email: str) -> str | None:
    if len(email) > MAX_EMAIL_LENGTH:
        return f"The email address is longer than {MAX_EMAIL_LENGTH} characters."
    try:
        validate_email(email, check_deliverability=False)
    except EmailNotValidError:
        return "The email address is not valid."
    return None


@cache
def _common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords, bundled with zxcvbn."""
    return frozenset(FREQUENCY_LISTS["passwords"])


def _password_problem(password: str, email: str) -> str | None:
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"The password needs at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"The password may have at most {MAX_PASSWORD_LENGTH} characters."
    lowered = password.lower()
    local_part = email.lower().split("@", 1)[0]
    if lowered in (email.lower(), local_part):
        return "The password must not be your email address."
    if lowered in _common_passwords():
        return "The password is too common; choose another."
    return None


def _as_given(raw: str) -> str:
    # Stored as given — a homoglyph domain is kept, not rewritten — and compared in lowercase.
    return unicodedata.normalize("NFC", raw.strip())


def normalize_email(raw: str) -> tuple[str, str]:
    """(email as given, lookup key); 422 if it is not an email address."""
    email = _as_given(raw)
    problem = _email_problem(email)
    if problem is not None:
        raise _invalid(("email", problem))
    return email, email.lower()


def check_password(password: str, email: str) -> None:
    problem = _password_problem(password, email)
    if problem is not None:
        raise _invalid(("password", problem))


def check_registration(raw_email: str, password: str) -> tuple[str, str]:
    """(email as given, lookup key) for a new account; one 422 listing every
    problem of the email and the password together."""
    email = _as_given(raw_email)
    found = [("email", _email_problem(email)), ("password", _password_problem(password, email))]
    problems = [(field, message) for field, message in found if message is not None]
    if problems:
        raise _invalid(*problems)
    return email, email.lower()
