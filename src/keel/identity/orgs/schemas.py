from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from keel.core.principal import Role
from keel.core.schemas import InputModel
from keel.identity.users.schemas import EmailInput


class OrgCreate(InputModel):
    """A new organization; its creator becomes its owner."""

    name: str = Field(min_length=1, max_length=100)


class OrgUpdate(InputModel):
    """An organization's new name."""

    name: str = Field(min_length=1, max_length=100)


class OrgRead(BaseModel):
    """An organization, with the caller's role in it."""

    id: uuid.UUID
    name: str
    personal: bool
    created_at: datetime
    role: Role = Field(description="The caller's role in this organization.")


class MemberAdd(InputModel):
    """A registered user to add to the organization, with a role."""

    email: EmailInput
    role: Role = Role.MEMBER


class MemberUpdate(InputModel):
    """A member's new role."""

    role: Role


class MemberRead(BaseModel):
    """A member of the organization and their role."""

    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    joined_at: datetime
    last_active_at: datetime | None


class OwnershipTransfer(InputModel):
    """The member who becomes the organization's owner."""

    user_id: uuid.UUID
