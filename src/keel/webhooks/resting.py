"""Endpoints that keep failing are rested, so that they stop taking the
attempts and places healthy endpoints need.

After ``KEEL_WEBHOOK_REST_AFTER_FAILURES`` attempts in a row have failed, an
endpoint is not attempted for a second; then one attempt at a time probes
it, and each failed probe doubles the rest, up to ``KEEL_WEBHOOK_REST_MAX_S``.
A success ends it. Its deliveries wait, pending and due: none is lost, and
none is dead-lettered sooner for it (a retry schedule advances only with
attempts); since each endpoint's due deliveries are found in their own
index range, the waiting backlog costs the other endpoints nothing. Kept per
process, in memory: a new process starts by trying every endpoint.
"""

from __future__ import annotations

import uuid

from keel.core.clock import monotonic

_FIRST_REST_S = 1.0


class Resting:
    def __init__(self, *, after_failures: int, max_rest_s: float) -> None:
        self.after_failures = after_failures
        self.max_rest_s = max_rest_s
        self._failures: dict[uuid.UUID, int] = {}
        self._until: dict[uuid.UUID, float] = {}

    def failed(self, endpoint_id: uuid.UUID) -> None:
        failures = self._failures.get(endpoint_id, 0) + 1
        self._failures[endpoint_id] = failures
        if failures >= self.after_failures:
            rest = min(_FIRST_REST_S * 2.0 ** (failures - self.after_failures), self.max_rest_s)
            self._until[endpoint_id] = monotonic() + rest

    def succeeded(self, endpoint_id: uuid.UUID) -> None:
        self._failures.pop(endpoint_id, None)
        self._until.pop(endpoint_id, None)

    def resting(self) -> list[uuid.UUID]:
        """The endpoints not to attempt now."""
        at = monotonic()
        return [endpoint_id for endpoint_id, until in self._until.items() if until > at]

    def probing(self, endpoint_id: uuid.UUID) -> bool:
        """Rested and not yet back: one attempt at a time."""
        return endpoint_id in self._until
