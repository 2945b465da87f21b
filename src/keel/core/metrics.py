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
    """One histogram series: its count, sum and observations per bucket
    (not cumulative; the last slot is above every bound)."""

    bounds: tuple[float, ...]
    created: float = field(default_factory=time.time)
    count: int = 0
    total: float = 0.0
    in_bucket: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.in_bucket = [0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.in_bucket[bisect_left(self.bounds, value)] += 1

    def add_to(self, family: HistogramMetricFamily, label_names: tuple[str, ...], labels: list[str]) -> None:
        """Append this series to ``family``, cumulative with inclusive bounds."""
        cumulative, buckets = 0, []
        for bound, count in zip((*map(str, self.bounds), "+Inf"), self.in_bucket, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        family.add_metric(labels, buckets, self.total)
        # As prometheus_client's own Histogram exposes it (add_metric takes no created time).
        family.samples.append(
            Sample(f"{family.name}_created", dict(zip(label_names, labels, strict=True)), self.created)
        )


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
            series = self.series[labels] = _Series(_LATENCY_BUCKETS)
        series.observe(seconds)

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
            series.add_to(latency, _LABELS, labels)
        yield requests
        yield latency


# The event loop's lag and the collector's pauses: a few milliseconds is a
# busy loop; tens hold every request and frame of the process up.
_PAUSE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _LoopCollector(Collector):
    """How long the event loop was held up (``keel.core.loop_health`` records
    it): its lag, and the garbage collector's pauses by generation.

    Plain Python like the HTTP collector, and for one more reason: pauses
    are recorded from inside the garbage collector, which may run in the
    middle of any allocation, a lock-taking metric's own included.
    Collections never run two at once, so their records need no lock."""

    def __init__(self) -> None:
        self.lag = _Series(_PAUSE_BUCKETS)
        self.gc_pauses = [_Series(_PAUSE_BUCKETS) for _ in range(3)]

    def collect(self) -> Iterable[Metric]:
        lag = HistogramMetricFamily(
            "keel_event_loop_lag_seconds",
            "How much later than due the event loop ran its heartbeat: time it was held by other work.",
        )
        self.lag.add_to(lag, (), [])
        pauses = HistogramMetricFamily(
            "keel_gc_pause_seconds",
            "Garbage collections by generation and how long each held the process.",
            labels=["generation"],
        )
        for generation, series in enumerate(self.gc_pauses):
            series.add_to(pauses, ("generation",), [str(generation)])
        yield lag
        yield pauses


class Metrics:
    """The app's registry and the instruments keel records into."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._http = _HttpCollector()
        self.registry.register(self._http)
        self._loop = _LoopCollector()
        self.registry.register(self._loop)
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

    def observe_loop_lag(self, seconds: float) -> None:
        self._loop.lag.observe(seconds)

    def observe_gc_pause(self, generation: int, seconds: float) -> None:
        self._loop.gc_pauses[generation].observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
