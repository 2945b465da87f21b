from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from keel.core.principal import Role
from keel.core.schemas import InputModel


class ApiKeyCreate(InputModel):
    """A new API key: its name and the role it acts with in the org."""

    name: str = Field(min_length=1, max_length=100)
    role: Role = Role.MEMBER


class ApiKeyRead(BaseModel):
    """An API key as listed: never its secret."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    org_id: uuid.UUID
    name: str
    role: Role
    display_prefix: str = Field(description="The first characters of the key, to recognise it.")
    created_by_id: uuid.UUID | None
    created_at: datetime
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    """A just-created API key, with its secret (shown this once)."""

    secret: str = Field(description="The key itself. Shown once; keel stores only its hash.")
