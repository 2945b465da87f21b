"""A short-lived, per-process memo of who may read: for read requests only.

Every authenticated request asks "is this user still active?" and, in an
org, "which role do they hold there?" — on PostgreSQL two round trips before
any work is done. Read requests take the answers from here; write requests
always ask the database (under a row lock), so nothing is ever *changed* on
a stale answer.

Freshness:
- in this process, a transaction that changes memberships, users,
  organizations or API keys clears the memo when it commits (session events
  on the database's session class: no change point has to remember it);
- other processes clear theirs when they receive the broadcast sent on the
  cache's pub/sub after such a commit;
- every entry expires after ``KEEL_ACCESS_CACHE_TTL_S`` anyway: the bound on
  staleness if a broadcast is lost (or comes from another machine without
  Redis). ``0`` turns the memo off.

An answer read from the database while a change commits is dropped, not
stored (a generation counter), so a clear can never be undone by a slower read.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Hashable
from typing import Any, Final

from sqlalchemy import event, inspect
from sqlalchemy.orm import InstanceState, ORMExecuteState, Session, UOWTransaction

from keel.core.cache import Cache
from keel.core.clock import monotonic
from keel.core.logging import get_logger
from keel.identity.api_keys.models import ApiKey
from keel.identity.orgs.models import Membership, Organization
from keel.identity.users.models import User

_log = get_logger("keel.access_cache")
CHANNEL = "keel.access-changed"
_CHANGED = "keel.access_changed"
_MAX_ENTRIES = 100_000
_RESUBSCRIBE_AFTER_S = 2.0
_POLL_S = 1.0
# Who may do what in which org is decided by these rows.
_ACCESS_MODELS = (User, Membership, Organization, ApiKey)
_ACCESS_TABLES = frozenset(model.__tablename__ for model in _ACCESS_MODELS)
# "Last seen" stamps say nothing about access. They are written past the ORM
# (``execute_core``), so any ORM write to these tables counts as a change:
# a write that is not a stamp errs on the side of clearing.
_STAMPS: dict[type, frozenset[str]] = {User: frozenset({"last_active_at"}), ApiKey: frozenset({"last_used_at"})}
MISSING: Final = object()
"""What :meth:`AccessCache.get` returns for a key it does not remember."""


class AccessCache:
    """The memo, its freshness rules (see the module) and its pub/sub follower."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.generation = 0
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._sender = os.urandom(8).hex().encode()
        self._broadcasts: set[asyncio.Task[None]] = set()
        self._cache: Cache | None = None
        self._stopping = False

    @property
    def enabled(self) -> bool:
        return self.ttl_s > 0

    def get(self, key: Hashable) -> Any:
        """The remembered value, or :data:`MISSING`."""
        entry = self._entries.get(key)
        if entry is None:
            return MISSING
        expires_at, value = entry
        if expires_at <= monotonic():
            self._entries.pop(key, None)
            return MISSING
        return value

    def put(self, key: Hashable, value: Any, *, generation: int) -> None:
        """Remember ``value`` if nothing changed since ``generation`` was read."""
        if not self.enabled or generation != self.generation:
            return
        if len(self._entries) >= _MAX_ENTRIES and key not in self._entries:
            self._entries.clear()
        self._entries[key] = (monotonic() + self.ttl_s, value)

    def replace(self, key: Hashable, value: Any) -> None:
        """Update a remembered value in place, keeping its expiry (a stamp written)."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries[key] = (entry[0], value)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()

    def watch(self, session_class: type[Session]) -> None:
        """Clear after every commit of a transaction that changed access rows."""
        event.listen(session_class, "after_flush", _note_flushed_changes)
        event.listen(session_class, "do_orm_execute", _note_statement_changes)
        event.listen(session_class, "after_commit", self._after_commit)

    def _after_commit(self, session: Session) -> None:
        if not session.info.pop(_CHANGED, False):
            return
        self.clear()
        if self._cache is not None:
            task = asyncio.get_running_loop().create_task(self._broadcast(self._cache))
            self._broadcasts.add(task)
            task.add_done_callback(self._broadcasts.discard)

    async def _broadcast(self, cache: Cache) -> None:
        try:
            await cache.publish(CHANNEL, self._sender)
        except Exception as exc:  # other processes fall back on the TTL
            _log.warning("access_cache.broadcast_failed", error=type(exc).__name__, ttl_s=self.ttl_s)

    async def follow(self, cache: Cache) -> None:
        """Broadcast changes to, and receive them from, other processes; runs until stopped."""
        self._cache = cache
        while True:
            try:
                async with cache.subscribe(CHANNEL) as subscription:
                    self.clear()  # whatever was missed while not subscribed
                    # Short waits, so stopping never depends on a cancellation
                    # reaching through the Redis client's read.
                    while not self._stopping:
                        message = await subscription.next_message(timeout_s=_POLL_S)
                        if message is not None and message.data != self._sender:
                            self.clear()
                    return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # keep following; the TTL bounds the gap
                _log.warning("access_cache.subscription_lost", error=type(exc).__name__, ttl_s=self.ttl_s)
                if self._stopping:
                    return
                await asyncio.sleep(_RESUBSCRIBE_AFTER_S)

    def stop(self) -> None:
        """Make :meth:`follow` return within a poll."""
        self._stopping = True

    async def close(self) -> None:
        for task in list(self._broadcasts):
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _changes_access(instance: object, *, dirty: bool) -> bool:
    if not isinstance(instance, _ACCESS_MODELS):
        return False
    if not dirty:
        return True
    stamps = _STAMPS.get(type(instance), frozenset())
    state: InstanceState[Any] = inspect(instance)
    return any(attr.key not in stamps and attr.history.has_changes() for attr in state.attrs)


def _note_flushed_changes(session: Session, _: UOWTransaction) -> None:
    # New users, orgs and keys cannot be remembered yet; a new membership can
    # (as "not a member").
    if (
        any(isinstance(instance, Membership) for instance in session.new)
        or any(_changes_access(instance, dirty=False) for instance in session.deleted)
        or any(_changes_access(instance, dirty=True) for instance in session.dirty)
    ):
        session.info[_CHANGED] = True


def _note_statement_changes(state: ORMExecuteState) -> None:
    table = getattr(state.statement, "table", None)
    if (state.is_update or state.is_delete) and getattr(table, "name", None) in _ACCESS_TABLES:
        state.session.info[_CHANGED] = True
