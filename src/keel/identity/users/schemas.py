from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from keel.core.principal import Role
from keel.core.schemas import InputModel

# An email address as a request sends it: the policy validates it (422 when
# not an address) and the schema declares the format.
EmailInput = Annotated[str, Field(max_length=320, json_schema_extra={"format": "email"})]


class UserRead(BaseModel):
    """A user account."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    name: str
    created_at: datetime
    last_active_at: datetime | None


class MembershipSummary(BaseModel):
    """One organization the user belongs to, and their role there."""

    org_id: uuid.UUID
    org_name: str
    role: Role
    personal: bool


class MeRead(UserRead):
    """The calling user and their memberships."""

    memberships: list[MembershipSummary]


class MeUpdate(InputModel):
    """Changes to the caller's account; a new password needs the current one."""

    name: str | None = Field(default=None, min_length=1, max_length=100)
    password: str | None = Field(default=None, max_length=256)
    current_password: str | None = Field(default=None, max_length=256)


class AccountExport(BaseModel):
    """Everything keel holds about one user."""

    user: UserRead
    memberships: list[MembershipSummary]
    sessions: list[dict[str, Any]]
    api_keys_created: list[dict[str, Any]]
    audit_events: list[dict[str, Any]]
    # Other domains' rows, by domain and kind: {"realtime": {"devices": [...], "events": [...]}}.
    domains: dict[str, dict[str, list[dict[str, Any]]]]


class UserSummary(BaseModel):
    """How other domains embed a user: enough to show, nothing private."""

    id: uuid.UUID
    name: str
