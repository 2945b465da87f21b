"""The event loop's lag and the garbage collector's pauses, as /metrics shows them."""

from __future__ import annotations

import asyncio
import gc
import time

import httpx
from prometheus_client.parser import text_string_to_metric_families

from keel.core.loop_health import LoopHeartbeat, watching
from keel.core.metrics import Metrics


def _histogram(text: str, name: str, **labels: str) -> tuple[dict[str, float], float]:
    """(cumulative count per bucket bound, count) of one series of a histogram."""
    family = next(f for f in text_string_to_metric_families(text) if f.name == name)
    mine = [s for s in family.samples if s.labels.items() >= labels.items()]
    buckets = {s.labels["le"]: s.value for s in mine if s.name == f"{name}_bucket"}
    count = next(s.value for s in mine if s.name == f"{name}_count")
    return buckets, count


async def test_a_held_loop_shows_as_lag_and_a_collection_as_a_pause_on_metrics(client: httpx.AsyncClient) -> None:
    await asyncio.sleep(0.1)  # the probe has run on a free loop
    time.sleep(0.15)  # noqa: ASYNC251 -- the point: hold the loop the app runs on
    await asyncio.sleep(0.05)
    gc.collect()
    text = (await client.get("/metrics")).text

    lag, probes = _histogram(text, "keel_event_loop_lag_seconds")
    assert probes >= 3
    assert lag["0.05"] >= 1  # the probes of a free loop ran on time
    assert lag["0.1"] < probes  # and one waited more than 0.1 s for the held loop
    assert lag["+Inf"] == probes
    _, full_collections = _histogram(text, "keel_gc_pause_seconds", generation="2")
    assert full_collections >= 1


async def test_nothing_is_recorded_once_the_watch_ends() -> None:
    metrics = Metrics()
    callbacks = list(gc.callbacks)
    async with watching(metrics, LoopHeartbeat(metrics)):
        await asyncio.sleep(0.05)
        gc.collect()
    assert gc.callbacks == callbacks

    def counts() -> tuple[float, float]:
        text = metrics.render().decode()
        return _histogram(text, "keel_event_loop_lag_seconds")[1], _histogram(
            text, "keel_gc_pause_seconds", generation="2"
        )[1]

    before = counts()
    assert before[0] >= 2
    assert before[1] >= 1
    await asyncio.sleep(0.05)
    gc.collect()
    assert counts() == before
