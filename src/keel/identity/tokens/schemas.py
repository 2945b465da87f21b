from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from keel.core.schemas import InputModel
from keel.identity.users.schemas import EmailInput, UserRead


class RegisterRequest(InputModel):
    """A new account: email, password (10+ characters, not common) and name."""

    # The registration policy checks both and reports every problem at once;
    # the schema states the same rules.
    email: EmailInput
    password: str = Field(max_length=1024, json_schema_extra={"minLength": 10})
    name: str = Field(min_length=1, max_length=100)


class LoginRequest(InputModel):
    """Email and password."""

    email: EmailInput
    password: str = Field(max_length=1024)


class RefreshRequest(InputModel):
    """The refresh token to exchange (it rotates) or revoke."""

    refresh_token: str = Field(min_length=1, max_length=200)


class TokenPairRead(BaseModel):
    """An access token (a JWT) and the refresh token that renews it."""

    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 - a scheme name, not a secret
    expires_in: int = Field(description="Seconds until the access token expires.")


class AuthResponse(TokenPairRead):
    """The account and its first token pair."""

    user: UserRead
