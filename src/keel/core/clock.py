"""The only source of time in keel, so tests and timestamps agree."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


def monotonic() -> float:
    """Seconds from an arbitrary origin; for durations only."""
    return time.perf_counter()


_stamped_second = -1
_stamped_prefix = ""


def utc_timestamp() -> str:
    """The current time as ISO 8601 UTC text with microseconds, e.g.
    ``2026-01-31T12:00:00.000123Z`` (log lines' timestamps).

    The date and time of day are formatted once per second; a log line pays
    only for the fraction.
    """
    global _stamped_second, _stamped_prefix
    seconds = time.time()
    whole = int(seconds)
    if whole != _stamped_second:
        _stamped_prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _stamped_second = whole
    return f"{_stamped_prefix}.{int((seconds - whole) * 1_000_000):06d}Z"
