"""When an account is deleted (identity's ``user.deleted`` outbox event),
its devices are revoked, its stored events deleted and its live sessions
closed on every process."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.commit_hooks import after_commit
from keel.core.outbox import OutboxMessage
from keel.realtime.devices.service import revoke_all_devices
from keel.realtime.events.service import forget_user

_DELETED = "user.deleted"


class AccountDeletions:
    name = "realtime.account_deletions"

    def __init__(self, disconnect_user: Callable[[uuid.UUID], None]) -> None:
        self.disconnect_user = disconnect_user

    async def hears(self, session: AsyncSession, event_type: str, org_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        return set(org_ids) if event_type == _DELETED else set()

    async def consume(self, session: AsyncSession, messages: Sequence[OutboxMessage]) -> None:
        for message in messages:
            if message.event_type == _DELETED:
                user_id = uuid.UUID(str(message.payload["user_id"]))
                await revoke_all_devices(session, user_id)
                await forget_user(session, user_id)
                after_commit(session, functools.partial(self.disconnect_user, user_id))
