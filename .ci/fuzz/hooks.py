"""Schemathesis hooks for keel's fuzzing run (.ci/fuzz/run)."""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis

from keel.core.idempotency import KEY_PATTERN


@schemathesis.hook
def before_call(context: Any, case: Any, **kwargs: Any) -> None:
    """A fresh Idempotency-Key for every request that sends a valid one.

    keel answers a key reused with a different body 422, as it should; the
    fuzzer reusing "0" across unrelated requests would make every such
    answer a finding. Invalid keys are sent as generated: they must be refused.
    """
    key = (case.headers or {}).get("Idempotency-Key")
    if key is not None and KEY_PATTERN.fullmatch(key.strip()):
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
