"""How core's ``authenticate`` finds principals: identity's side of the contract."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.clock import now
from keel.core.db import Database
from keel.core.principal import Principal, Role
from keel.core.security import hash_secret
from keel.identity.api_keys import repository as api_keys
from keel.identity.orgs import repository as orgs
from keel.identity.users import repository as users

_Touch = Callable[[AsyncSession, uuid.UUID, datetime, datetime], Awaitable[None]]


class IdentityResolver:
    def __init__(self, database: Database, *, activity_interval_s: int) -> None:
        self.database = database
        self.activity_interval = timedelta(seconds=activity_interval_s)

    async def user_principal(self, session: AsyncSession, user_id: uuid.UUID, *, write: bool) -> Principal | None:
        # Writers key-share-lock the user row: an account deletion waits for them.
        active, last_active_at = await users.last_seen(session, user_id, lock=write)
        if not active:
            return None
        await self._stamp(session if write else None, user_id, last_active_at, users.touch_activity)
        return Principal(user_id=user_id)

    async def api_key_principal(self, session: AsyncSession, api_key: str, *, write: bool) -> Principal | None:
        key = await api_keys.active_by_hash(session, hash_secret(api_key))
        if key is None:
            return None
        await self._stamp(session if write else None, key.id, key.last_used_at, api_keys.touch_used)
        return Principal(api_key_id=key.id, key_org_id=key.org_id, key_role=Role(key.role))

    async def role_in_org(self, session: AsyncSession, principal: Principal, org_id: uuid.UUID) -> Role | None:
        if principal.api_key_id is not None:
            return principal.key_role if principal.key_org_id == org_id else None
        assert principal.user_id is not None
        role = await orgs.role_of(session, principal.user_id, org_id)
        return Role(role) if role else None

    async def _stamp(
        self, request_session: AsyncSession | None, row_id: uuid.UUID, last: datetime | None, touch: _Touch
    ) -> None:
        """Write a "last seen" stamp at most once per interval.

        A write request stamps in its own transaction (it already holds the
        write lock); a read request uses a short transaction of its own. The
        UPDATE's WHERE keeps concurrent stamps from piling up.
        """
        moment = now()
        if last is not None and moment - last < self.activity_interval:
            return
        stale_before = moment - self.activity_interval
        if request_session is not None:
            await touch(request_session, row_id, moment, stale_before)
            return
        async with self.database.session(write=True) as session:
            await touch(session, row_id, moment, stale_before)
            await session.commit()
