from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from keel.core.principal import Role
from keel.core.schemas import InputModel


class OrgCreate(InputModel):
    name: str = Field(min_length=1, max_length=100)


class OrgUpdate(InputModel):
    name: str = Field(min_length=1, max_length=100)


class OrgRead(BaseModel):
    id: uuid.UUID
    name: str
    personal: bool
    created_at: datetime
    role: Role = Field(description="The caller's role in this organization.")


class MemberAdd(InputModel):
    email: str = Field(max_length=320)
    role: Role = Role.MEMBER


class MemberUpdate(InputModel):
    role: Role


class MemberRead(BaseModel):
    user_id: uuid.UUID
    email: str
    name: str
    role: Role
    joined_at: datetime
    last_active_at: datetime | None


class OwnershipTransfer(InputModel):
    user_id: uuid.UUID
