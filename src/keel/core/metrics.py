"""Prometheus metrics: one registry per app, HTTP instruments, pool gauges.

HTTP series are labelled by route *template*, method and status class, so
their number is bounded by the route table, not by the traffic.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

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
_LABELS = ("method", "route", "status_class")


@dataclass(slots=True)
class _Series:
    """One label set's request count, latency sum and latency histogram
    (per bucket, not cumulative; the last slot is above every bound)."""

    created: float = field(default_factory=time.time)
    count: int = 0
    total_seconds: float = 0.0
    in_bucket: list[int] = field(default_factory=lambda: [0] * (len(_LATENCY_BUCKETS) + 1))


class _HttpCollector(Collector):
    """Requests counted and timed in plain Python, turned into Prometheus
    families only when scraped.

    prometheus_client's Counter and Histogram take a lock and walk several
    calls per sample; every request records one, while scrapes come every
    few seconds. Requests are recorded and scraped on the event loop's
    thread, so nothing here needs a lock.
    """

    def __init__(self) -> None:
        self.series: dict[tuple[str, str, int], _Series] = {}

    def observe(self, labels: tuple[str, str, int], seconds: float) -> None:
        series = self.series.get(labels)
        if series is None:
            series = self.series[labels] = _Series()
        series.count += 1
        series.total_seconds += seconds
        series.in_bucket[bisect_left(_LATENCY_BUCKETS, seconds)] += 1

    def collect(self) -> Iterable[Metric]:
        requests = CounterMetricFamily("keel_http_requests", "HTTP requests served.", labels=_LABELS)
        latency = HistogramMetricFamily(
            "keel_http_request_duration_seconds",
            "Time from request start to the end of the response.",
            labels=_LABELS,
        )
        for (method, route, status_class), series in list(self.series.items()):
            labels = [method, route, f"{status_class}xx"]
            requests.add_metric(labels, series.count, created=series.created)
            cumulative, buckets = 0, []
            for bound, count in zip((*map(str, _LATENCY_BUCKETS), "+Inf"), series.in_bucket, strict=True):
                cumulative += count
                buckets.append((bound, cumulative))
            latency.add_metric(labels, buckets, series.total_seconds)
            # As prometheus_client's own Histogram exposes it (add_metric takes no created time).
            latency.samples.append(
                Sample(f"{latency.name}_created", dict(zip(_LABELS, labels, strict=True)), series.created)
            )
        yield requests
        yield latency


class Metrics:
    """The app's registry and the instruments keel records into."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._http = _HttpCollector()
        self.registry.register(self._http)
        # The worker's (keel.core.worker).
        self.outbox_processed = Counter(
            "keel_outbox_events_processed", "Outbox events handed to every consumer.", registry=self.registry
        )
        self.outbox_lag_seconds = Gauge(
            "keel_outbox_lag_seconds",
            "How long the oldest unprocessed outbox event has been due, as the worker last saw.",
            registry=self.registry,
        )
        self.job_runs = Counter(
            "keel_job_runs", "Periodic job runs by job and outcome.", ["job", "outcome"], registry=self.registry
        )
        self.retention_purged_rows = Counter(
            "keel_retention_purged_rows", "Rows deleted by retention, by table.", ["table"], registry=self.registry
        )

    def watch_pool(self, read_stats: Callable[[], PoolStats | None]) -> None:
        self.registry.register(_PoolCollector(read_stats))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in _METHODS:  # clients choose the method: keep the series bounded
            method = "OTHER"
        self._http.observe((method, route, status // 100), seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
