"""Webhooks wire themselves into the app: their routes and endpoint policy,
and on the worker the fan-out of outbox events to deliveries and the
dispatcher that sends them."""

from __future__ import annotations

from fastapi import FastAPI

from keel.core.api import include_api_routers
from keel.core.platform import Platform
from keel.webhooks.dispatcher import Dispatcher
from keel.webhooks.endpoints.service import EndpointPolicy
from keel.webhooks.fanout import WebhookFanout
from keel.webhooks.metrics import WebhookMetrics
from keel.webhooks.retention import retention_job
from keel.webhooks.router import routers


def install(app: FastAPI, platform: Platform) -> None:
    policy = EndpointPolicy.for_settings(platform.settings)
    platform.provide(policy)
    include_api_routers(app, platform, routers)
    dispatcher = Dispatcher(
        platform.database,
        platform.settings.webhooks,
        policy.secrets,
        WebhookMetrics(platform.metrics.registry),
        wake=platform.worker.wake_passes,
        look_every_s=platform.settings.worker.worker_poll_interval_s,
    )
    platform.worker.add_consumer(WebhookFanout(added=dispatcher.deliveries_added))
    platform.worker.add_pass(dispatcher)
    platform.worker.add_job(retention_job(platform.settings, platform.metrics))
