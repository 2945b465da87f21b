"""Work to do once a transaction has committed, and only then: telling other
processes about a change before it commits would let them act on a change
that may still roll back."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

_KEY = "keel.after_commit"


def after_commit(session: AsyncSession, callback: Callable[[], None]) -> None:
    """Call ``callback`` (on the event loop, without awaiting) once
    ``session``'s transaction commits; never if it rolls back."""
    session.info.setdefault(_KEY, []).append(callback)


def watch(session_class: type[Session]) -> None:
    """Run the callbacks of each commit of ``session_class``'s sessions."""

    def committed(session: Session) -> None:
        for callback in session.info.pop(_KEY, ()):
            callback()

    def rolled_back(session: Session) -> None:
        session.info.pop(_KEY, None)

    event.listen(session_class, "after_commit", committed)
    event.listen(session_class, "after_rollback", rolled_back)
