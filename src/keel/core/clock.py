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
