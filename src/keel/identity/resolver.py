"""How core's ``authenticate`` finds principals: identity's side of the contract."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from keel.core.clock import now
from keel.core.db import Database
from keel.core.principal import Principal, Role
from keel.core.security import hash_secret
from keel.identity.access_cache import MISSING, AccessCache
from keel.identity.api_keys import repository as api_keys
from keel.identity.last_seen import LastSeenStamps, Touch
from keel.identity.orgs import repository as orgs
from keel.identity.users import repository as users


class IdentityResolver:
    """Writes ask the database, under a row lock; reads may take the
    :class:`AccessCache`'s answer (see there for how fresh it is)."""

    def __init__(self, database: Database, *, activity_interval_s: int, access: AccessCache) -> None:
        self.database = database
        self.activity_interval = timedelta(seconds=activity_interval_s)
        self.access = access
        self.last_seen = LastSeenStamps(database, self.activity_interval)

    async def user_principal(self, session: AsyncSession, user_id: uuid.UUID, *, write: bool) -> Principal | None:
        if write:
            # Writers key-share-lock the user row: an account deletion waits for them.
            active, last_active_at = await users.last_seen(session, user_id, lock=True)
            if not active:
                return None
            await self._stamp_now(session, user_id, last_active_at, users.touch_activity)
            return Principal(user_id=user_id)
        last_active_at = self.access.get(("user", user_id))
        if last_active_at is MISSING:
            generation = self.access.generation
            async with self._lookup() as lookup:
                active, last_active_at = await users.last_seen(lookup, user_id)
            if not active:
                return None
            self.access.put(("user", user_id), last_active_at, generation=generation)
        return self._seen_reader(user_id, last_active_at)

    def _seen_reader(self, user_id: uuid.UUID, last_active_at: datetime | None) -> Principal:
        """A reading user's principal, their "last seen" stamp handed over if it is due."""
        stamped = self._stamp_later(user_id, last_active_at, users.touch_activity)
        if stamped is not None:
            self.access.replace(("user", user_id), stamped)
        return Principal(user_id=user_id)

    async def api_key_principal(self, session: AsyncSession, api_key: str, *, write: bool) -> Principal | None:
        key_hash = hash_secret(api_key)
        cache_key = ("api_key", key_hash)
        request_session = session if write else None
        remembered: Any = MISSING if write else self.access.get(cache_key)
        if remembered is MISSING:
            generation = self.access.generation
            async with self._lookup(request_session) as lookup:
                key = await api_keys.active_by_hash(lookup, key_hash)
            if key is None:
                return None
            principal = Principal(api_key_id=key.id, key_org_id=key.org_id, key_role=Role(key.role))
            remembered = (principal, key.last_used_at)
            if not write:
                self.access.put(cache_key, remembered, generation=generation)
        principal, last_used_at = remembered
        assert isinstance(principal, Principal)
        assert principal.api_key_id is not None
        if request_session is not None:
            await self._stamp_now(request_session, principal.api_key_id, last_used_at, api_keys.touch_used)
        elif (stamped := self._stamp_later(principal.api_key_id, last_used_at, api_keys.touch_used)) is not None:
            self.access.replace(cache_key, (principal, stamped))
        return principal

    async def role_in_org(
        self, session: AsyncSession, principal: Principal, org_id: uuid.UUID, *, write: bool
    ) -> Role | None:
        if principal.api_key_id is not None:
            return principal.key_role if principal.key_org_id == org_id else None
        assert principal.user_id is not None
        key = ("role", principal.user_id, org_id)
        role = MISSING if write else self.access.get(key)
        if role is MISSING:
            generation = self.access.generation
            found = await orgs.role_of(session, principal.user_id, org_id)
            role = Role(found) if found else None
            if not write:
                self.access.put(key, role, generation=generation)
        assert role is None or isinstance(role, Role)
        return role

    async def user_in_org(
        self, session: AsyncSession, user_id: uuid.UUID, org_id: uuid.UUID, *, write: bool
    ) -> tuple[Principal | None, Role | None]:
        if not write:
            if self.access.get(("role", user_id, org_id)) is MISSING and self.access.get(("user", user_id)) is MISSING:
                return await self._reader_and_role(user_id, org_id)
            # From the memo, each on its own.
            principal = await self.user_principal(session, user_id, write=False)
            if principal is None:
                return None, None
            return principal, await self.role_in_org(session, principal, org_id, write=False)
        # A write asks the database once: the user's row (key-share-locked, as
        # user_principal locks it) and the role, in one statement.
        active, last_active_at, role = await orgs.user_and_role(session, user_id, org_id, lock=True)
        if not active:
            return None, None
        await self._stamp_now(session, user_id, last_active_at, users.touch_activity)
        return Principal(user_id=user_id), Role(role) if role else None

    async def _reader_and_role(self, user_id: uuid.UUID, org_id: uuid.UUID) -> tuple[Principal | None, Role | None]:
        """A reader the memo knows nothing of: the user and the role in one
        statement (the memo's entries for both expire together), remembered."""
        generation = self.access.generation
        async with self._lookup() as lookup:
            active, last_active_at, found = await orgs.user_and_role(lookup, user_id, org_id, lock=False)
        if not active:
            return None, None
        role = Role(found) if found else None
        self.access.put(("user", user_id), last_active_at, generation=generation)
        self.access.put(("role", user_id, org_id), role, generation=generation)
        return self._seen_reader(user_id, last_active_at), role

    @asynccontextmanager
    async def _lookup(self, request_session: AsyncSession | None = None) -> AsyncIterator[AsyncSession]:
        """Where a credential is looked up: the request's own session for a write
        (it locks there), else a short session of its own, whose prepared reads
        borrow a pooled connection for just their statement — a request never
        holds one pooled connection while it waits for a second (with as many
        readers as the pool has connections, that waited until the pool timed out)."""
        if request_session is not None:
            yield request_session
            return
        async with self.database.session(write=False) as session:
            yield session

    def _due(self, last: datetime | None) -> datetime | None:
        """Now, if a row last stamped at ``last`` is due a "last seen" stamp (once per interval)."""
        moment = now()
        return moment if last is None or moment - last >= self.activity_interval else None

    async def _stamp_now(self, session: AsyncSession, row_id: uuid.UUID, last: datetime | None, touch: Touch) -> None:
        """A write request stamps in its own transaction, which holds the write lock
        already. The UPDATE's WHERE keeps concurrent stamps from piling up."""
        moment = self._due(last)
        if moment is not None:
            await touch(session, [row_id], moment, moment - self.activity_interval)

    def _stamp_later(self, row_id: uuid.UUID, last: datetime | None, touch: Touch) -> datetime | None:
        """A read request hands its stamp over (see keel.identity.last_seen); the time it will write, if due."""
        moment = self._due(last)
        if moment is not None:
            self.last_seen.hand_over(touch, row_id, moment)
        return moment
