"""When a failed delivery is tried again: the configured schedule, with jitter,
and no sooner than the receiver's ``Retry-After`` (on 429 and 503)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# A receiver may ask for a pause, not for a message to wait forever.
MAX_RETRY_AFTER_S = 86_400.0
_JITTER = 0.1


def next_delay(schedule: Sequence[float], attempts_made: int, retry_after_s: float | None = None) -> float | None:
    """Seconds until the next attempt after ``attempts_made`` failed ones, or
    None when the schedule is spent (the delivery is dead)."""
    if attempts_made > len(schedule):
        return None
    delay = schedule[attempts_made - 1] * random.uniform(1 - _JITTER, 1 + _JITTER)  # noqa: S311 (spreading retries, not secrecy)
    if retry_after_s is not None:
        delay = max(delay, min(retry_after_s, MAX_RETRY_AFTER_S))
    return delay


def parse_retry_after(value: str | None, *, at: datetime) -> float | None:
    """``Retry-After`` as seconds from ``at``: delay-seconds or an HTTP date; None if absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - at).total_seconds(), 0.0)
