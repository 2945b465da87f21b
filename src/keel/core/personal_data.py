"""What each domain holds about one person, gathered for their export.

A user's export (GDPR access and portability) is identity's, but other
domains keep rows about the person too (realtime: their devices and the
events those sent). Each such domain adds a :class:`PersonalDataSource` to
the platform; the export asks every source, in the request's transaction,
so the domains stay unknown to identity.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

# A source's rows by kind, e.g. {"devices": [...], "events": [...]}: JSON-ready values.
PersonalRows = dict[str, list[dict[str, Any]]]


class PersonalDataSource(Protocol):
    name: str  # the key of its part of the export: the domain's name

    async def export(self, session: AsyncSession, user_id: uuid.UUID) -> PersonalRows:
        """Every row this domain holds about ``user_id``."""
