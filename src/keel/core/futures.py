"""Small helpers for futures several awaiters share."""

from __future__ import annotations

import asyncio
from typing import Any


def mark_outcome_seen(future: asyncio.Future[Any]) -> None:
    """A done callback: a future nobody may await still has its error marked
    as seen (asyncio would otherwise log it as never retrieved)."""
    if not future.cancelled():
        future.exception()
