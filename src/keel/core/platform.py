"""What core builds once per app, and the one typed way to reach it.

The app factory builds a :class:`Platform` and attaches it to the app; each
domain's ``install`` adds what it owns (identity: the principal resolver)
and the work it needs at startup and shutdown. Dependencies and handlers
reach these services through :func:`request_platform` (or :func:`platform`
for an app), never through loose attributes of ``app.state``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import HTTPConnection
from starlette.routing import BaseRoute

if TYPE_CHECKING:  # the services' modules import this one for their accessors
    from keel.config import Settings
    from keel.core.auth import PrincipalResolver
    from keel.core.cache import Cache
    from keel.core.db import Database
    from keel.core.health import HealthChecker
    from keel.core.loop_health import LoopHeartbeat
    from keel.core.metrics import Metrics
    from keel.core.pagination import CursorCodec
    from keel.core.personal_data import PersonalDataSource
    from keel.core.ratelimit import RateLimiter
    from keel.core.security import TokenSigner
    from keel.core.worker import Worker

# A domain's part of the app's lifespan: entered at startup in install
# order, exited at shutdown in reverse.
LifespanPart = Callable[[], AbstractAsyncContextManager[None]]
ServiceT = TypeVar("ServiceT")


@dataclass
class Platform:
    settings: Settings
    metrics: Metrics
    # Beats on the event loop: its lag for metrics, its stalls for load shedding.
    heartbeat: LoopHeartbeat
    database: Database
    cache: Cache
    rate_limiter: RateLimiter
    cursors: CursorCodec
    token_signer: TokenSigner
    health: HealthChecker
    worker: Worker
    lifespan_parts: list[LifespanPart] = field(default_factory=list)
    resolver: PrincipalResolver | None = None
    services: dict[type[Any], Any] = field(default_factory=dict)
    api_routes: list[BaseRoute] = field(default_factory=list)
    # WebSocket endpoints by exact path, dispatched by accelerators.direct_websockets.
    websocket_endpoints: dict[str, Any] = field(default_factory=dict)
    # What domains other than identity hold about a person, for their export.
    personal_data: list[PersonalDataSource] = field(default_factory=list)

    @property
    def principal_resolver(self) -> PrincipalResolver:
        """Who a credential belongs to; identity installs it."""
        if self.resolver is None:
            raise RuntimeError("no principal resolver: identity is not installed")
        return self.resolver

    def provide(self, service: object) -> None:
        """Register a domain's service, found again by its type with :meth:`get`."""
        self.services[type(service)] = service

    def get(self, kind: type[ServiceT]) -> ServiceT:
        found: ServiceT = self.services[kind]
        return found


def attach(app: Starlette, built: Platform) -> None:
    app.state.platform = built


def platform(app: Starlette) -> Platform:
    found: Platform = app.state.platform
    return found


def request_platform(connection: HTTPConnection) -> Platform:
    """The platform of the app serving this request (or WebSocket)."""
    found: Platform = connection.app.state.platform
    return found
