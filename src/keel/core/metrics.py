"""Prometheus metrics: one registry per app, HTTP instruments, pool gauges.

HTTP series are labelled by route *template*, method and status class, so
their number is bounded by the route table, not by the traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True, slots=True)
class PoolStats:
    """What the DB pool collector reads; supplied by the database adapter."""

    size: int
    checked_out: int
    overflow: int
    checked_in: int


class _PoolCollector(Collector):
    def __init__(self, read_stats: Callable[[], PoolStats | None]) -> None:
        self.read_stats = read_stats

    def collect(self) -> Iterable[Metric]:
        stats = self.read_stats()
        if stats is None:
            return
        for name, doc, value in (
            ("keel_db_pool_size", "Configured pool size.", stats.size),
            ("keel_db_pool_checked_out", "Connections in use.", stats.checked_out),
            ("keel_db_pool_overflow", "Connections opened beyond the pool size.", stats.overflow),
            ("keel_db_pool_checked_in", "Idle connections in the pool.", stats.checked_in),
        ):
            yield GaugeMetricFamily(name, doc, value=value)


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """The app's registry and the instruments keel records into."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Counter(
            "keel_http_requests",
            "HTTP requests served.",
            ("method", "route", "status_class"),
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self.latency = Histogram(
            "keel_http_request_duration_seconds",
            "Time from request start to the end of the response.",
            ("method", "route", "status_class"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def watch_pool(self, read_stats: Callable[[], PoolStats | None]) -> None:
        self.registry.register(_PoolCollector(read_stats))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in _METHODS:  # clients choose the method: keep the series bounded
            method = "OTHER"
        labels = (method, route, status // 100)
        children = self._children.get(labels)
        if children is None:  # labels() validates and locks: look each series up once
            named = (method, route, f"{status // 100}xx")
            children = self._children[labels] = (self.requests.labels(*named), self.latency.labels(*named))
        children[0].inc()
        children[1].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
