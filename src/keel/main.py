"""The application factory: settings in, a fully wired ASGI app out."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import signal
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware

from keel import __version__
from keel.config import Settings, configuration_problems, load_settings
from keel.core import commit_hooks, schema
from keel.core.accelerators.direct_websockets import DirectWebSockets
from keel.core.auth import AUTHENTICATING
from keel.core.cache import Cache, MemoryCache, RedisCache
from keel.core.db import Database
from keel.core.errors import install_error_handlers
from keel.core.health import HealthChecker
from keel.core.logging import configure_logging, get_logger
from keel.core.loop_health import LoopHeartbeat
from keel.core.loop_health import watching as watching_the_loop
from keel.core.metrics import Metrics
from keel.core.middleware.load_shedding import LoadShedder
from keel.core.middleware.request_context import RequestContextMiddleware
from keel.core.middleware.request_limits import RequestLimits
from keel.core.openapi import declare_security
from keel.core.ops import add_operational_routes, mount_docs
from keel.core.outbox_signal import CommitAnnouncer
from keel.core.pagination import CursorCodec
from keel.core.platform import Platform, attach
from keel.core.platform import platform as app_platform
from keel.core.ratelimit import RateLimiter
from keel.core.retention import retention_job
from keel.core.security import TokenSigner
from keel.core.tracing import telemetry_config
from keel.core.worker import Worker
from keel.identity.install import install as install_identity
from keel.realtime.install import install as install_realtime
from keel.webhooks.install import install as install_webhooks
from keel.work.install import install as install_work

_log = get_logger("keel.app")


class ConfigurationError(RuntimeError):
    """Settings unfit for their environment; the message lists every problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("refusing to start: " + "; ".join(problems))


def _middleware(
    settings: Settings, metrics: Metrics, heartbeat: LoopHeartbeat, websockets: dict[str, Any]
) -> list[Middleware]:
    """Outermost first. One request layer wraps the app, so every response it
    makes, even a 500 or a 413 from the limits, carries the request id and the
    security headers. CORS, a layer only when origins are configured, sits
    outside it, so browsers can read those answers too (it answers
    preflights itself: they are neither logged nor counted)."""
    http = settings.http
    cors = Middleware(
        CORSMiddleware,
        allow_origins=http.cors_origins,
        allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "If-Match", "X-API-Key", "X-Request-ID"],
        expose_headers=[
            "X-Request-ID",
            "ETag",
            "Retry-After",
            "RateLimit-Limit",
            "RateLimit-Remaining",
            "RateLimit-Reset",
        ],
        max_age=600,
    )
    limits = RequestLimits(
        max_body_bytes=http.max_body_bytes,
        max_header_bytes=http.max_header_bytes,
        timeout_s=http.request_timeout_s,
        client_timeout_s=http.client_timeout_s,
        shedder=LoadShedder(
            max_in_flight=http.max_in_flight,
            max_stall_s=http.max_loop_stall_ms / 1000,
            max_queued=http.max_queued,
            max_wait_s=http.max_queue_wait_ms / 1000,
            heartbeat=heartbeat,
        ),
    )
    return [
        *([cors] if http.cors_origins else []),
        Middleware(
            RequestContextMiddleware,
            metrics=metrics,
            limits=limits,
            trusted_proxies=frozenset(http.trusted_proxies),
            hsts_max_age_s=http.hsts_max_age_s,
        ),
        Middleware(DirectWebSockets, endpoints=websockets),
    ]


# Each domain wires itself in, in this order: work builds on identity's resolver.
DOMAINS: tuple[Callable[[FastAPI, Platform], None], ...] = (
    install_identity,
    install_work,
    install_webhooks,
    install_realtime,
)


def build_platform(settings: Settings) -> Platform:
    """Core's services for one app: database, cache, rate limiter, signers, health."""
    metrics = Metrics()
    database = Database(settings.database)
    metrics.watch_pool(database.pool_stats)
    redis = settings.redis
    redis_url = redis.redis_url.get_secret_value() if redis.redis_url else None
    cache: Cache = (
        RedisCache(
            redis_url,
            prefix=redis.redis_key_prefix,
            max_connections=redis.redis_pool_size,
            timeout_s=redis.redis_timeout_s,
        )
        if redis_url
        else MemoryCache()
    )
    rate_limiter = RateLimiter(
        settings.rate_limit,
        redis_url=redis_url,
        redis_key_prefix=redis.redis_key_prefix,
        redis_timeout_s=redis.redis_timeout_s,
        redis_pool_size=redis.redis_pool_size,
        trusted_proxies=frozenset(settings.http.trusted_proxies),
    )
    CommitAnnouncer(cache).watch(database.session_class)
    commit_hooks.watch(database.session_class)
    worker = Worker(database, settings.worker, metrics)
    worker.listen(cache)
    worker.add_job(retention_job(settings.worker, metrics))
    return Platform(
        settings=settings,
        metrics=metrics,
        heartbeat=LoopHeartbeat(metrics),
        database=database,
        cache=cache,
        rate_limiter=rate_limiter,
        cursors=CursorCodec(settings.signing_key),
        token_signer=TokenSigner(settings.signing_key, settings.auth),
        health=HealthChecker(
            database,
            cache=cache if redis_url else None,
            rate_limiter=rate_limiter,
            expected_revision=schema.head_revision(),
        ),
        worker=worker,
    )


def _lifespan(platform: Platform) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    settings = platform.settings

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        _log.info(
            "keel.starting",
            version=__version__,
            env=settings.env.value,
            database=platform.database.display_url,
            redis=settings.redis.redis_url is not None,
        )
        if not platform.rate_limiter.enabled:
            _log.warning("keel.rate_limits_off", note="KEEL_RATE_LIMITS=off: no request is limited")
        async with watching_the_loop(platform.metrics, platform.heartbeat), contextlib.AsyncExitStack() as domains:
            for part in platform.lifespan_parts:
                await domains.enter_async_context(part())
            await platform.database.warm_up()
            platform.database.start_checkpoints()
            if settings.worker.worker_in_process:
                platform.worker.start()
            try:
                yield
            finally:
                _log.info("keel.stopping")
                await platform.worker.stop()  # its pass finishes while the pools are open
                await domains.aclose()  # the domains stop before the pools they use close
                await platform.rate_limiter.close()
                await platform.cache.close()
                await platform.database.dispose()

    return lifespan


def create_app(
    settings: Settings | None = None,
    *,
    routers: Iterable[APIRouter] = (),
    telemetry: dict[str, Any] | None = None,
) -> FastAPI:
    """Build keel: core's platform, then each domain installs itself.
    Refuses settings unfit for their environment.

    Args:
        settings: configuration; read from the environment when omitted.
        routers: extra routers mounted beside the API (tests, plugins).
        telemetry: FastAPI telemetry config overriding the one from settings.
    """
    settings = settings or load_settings()
    problems = configuration_problems(settings)
    if problems:
        raise ConfigurationError(problems)
    configure_logging(settings)

    built = build_platform(settings)
    app = FastAPI(
        title="keel",
        version=__version__,
        summary="A production-ready, multi-tenant backend service.",
        debug=settings.debug,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_exposed else None,
        lifespan=_lifespan(built),
        middleware=_middleware(settings, built.metrics, built.heartbeat, built.websocket_endpoints),
        telemetry=telemetry if telemetry is not None else telemetry_config(settings),  # type: ignore[arg-type]
    )
    attach(app, built)
    install_error_handlers(app)
    add_operational_routes(app, expose_metrics=settings.metrics_exposed)
    if settings.docs_exposed:
        mount_docs(app)
    for install in DOMAINS:
        install(app, built)
    declare_security(app, built.api_routes, AUTHENTICATING)
    for router in routers:
        app.include_router(router)
    return app


async def run_worker(settings: Settings) -> None:
    """``keel worker``: keel's services and lifespan with the worker running
    and no HTTP server, until SIGTERM or SIGINT; then the worker's current
    pass finishes and what it still holds is given back."""
    worker_settings = settings.worker.model_copy(update={"worker_in_process": True})
    app = create_app(settings.model_copy(update={"worker": worker_settings}))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with app.router.lifespan_context(app):
        _log.info("keel.worker_running", holder=app_platform(app).worker.holder)
        await stop.wait()


YOUNG_COLLECTION_EVERY = 20_000  # allocations; docs/performance.md has the A/B


def tune_collector_for_serving() -> None:
    """The garbage collector's settings for a process that has built its app
    and now serves requests (``keel serve``, and in-process measurements of it)."""
    # What exists now (modules, routes, schemas, table metadata) lives as long
    # as the process: frozen out of the collector's way, full collections stop
    # walking it on every pass (measured: ~9 % more requests/s on a trivial route).
    gc.collect()
    gc.freeze()
    # A request allocates a few thousand objects, nearly all freed by
    # reference counting as it ends; at Python's default (a young-generation
    # pass every 700 allocations) the collector ran several times per
    # request to find no cycles. Every YOUNG_COLLECTION_EVERY instead.
    gc.set_threshold(YOUNG_COLLECTION_EVERY)


def app_from_environment() -> FastAPI:
    """Factory for ``uvicorn --factory`` (one app per server process): settings
    from the environment."""
    app = create_app()
    tune_collector_for_serving()
    return app
