"""A token bucket: so many events per second, with a burst of as many, in this process."""

from __future__ import annotations

from keel.core.clock import monotonic


class TokenBucket:
    def __init__(self, per_s: float) -> None:
        self.per_s = per_s
        self.tokens = per_s
        self.at = monotonic()

    def _refill(self) -> None:
        moment = monotonic()
        self.tokens = min(self.per_s, self.tokens + (moment - self.at) * self.per_s)
        self.at = moment

    def empty(self) -> bool:
        """Whether an event now would be refused (nothing is taken)."""
        self._refill()
        return self.tokens < 1

    def take(self) -> bool:
        """Take a token for an event now; False when there is none."""
        self._refill()
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True
