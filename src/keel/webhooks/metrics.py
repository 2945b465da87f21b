"""The webhook metrics: attempts by outcome, and the gauges the dispatcher keeps counted."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class WebhookMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.dead_letters = Gauge(
            "keel_webhook_dead_letters", "Dead deliveries waiting for a replay, as last counted.", registry=registry
        )
        self.endpoints_disabled = Gauge(
            "keel_webhook_endpoints_disabled", "Disabled webhook endpoints, as last counted.", registry=registry
        )
        self.attempts = Counter(
            "keel_webhook_attempts",
            "Webhook delivery attempts by outcome: delivered, retried (failed, tried again later), "
            "dead (failed, no more tries).",
            ["outcome"],
            registry=registry,
        )
