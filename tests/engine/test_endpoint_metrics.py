"""The endpoint metrics recorder on a real SQLite metadata store: what one invocation adds to
each of SageMaker's metrics, stored and unflushed buckets answered as one, a failed flush kept
for the next, retention, the recent invocations, and recording from many threads while the
flusher runs."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.engine.endpoint_metrics import (
    ERRORS_4XX,
    ERRORS_5XX,
    INVOCATIONS,
    LATENCY_BOUNDS,
    METRIC_NAMES,
    MODEL_LATENCY,
    OVERHEAD_LATENCY,
    PER_INSTANCE,
    RECENT,
    EndpointMetrics,
)
from dockyard.engine.metric_histogram import bin_of, percentile
from dockyard.storage.metadata import EndpointMetricBucket, MetadataStore

T0 = 1_796_208_297.25


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def metadata(tmp_path: Path) -> Iterator[MetadataStore]:
    store = MetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
    try:
        yield store
    finally:
        store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def metrics(metadata: MetadataStore, clock: Clock) -> EndpointMetrics:
    return EndpointMetrics(metadata, clock=clock)


def _sums(metrics: EndpointMetrics, name: str, **where: str) -> tuple[int, float]:
    found = metrics.buckets("ep", name, **where)
    return sum(b.count for b in found), sum(b.total for b in found)


def test_one_invocation_of_each_kind(metrics: EndpointMetrics, clock: Clock) -> None:
    metrics.record("ep", "A", "A-1", 200, 1500, 300, 2)
    metrics.record("ep", "A", "A-2", 400, 900, 250, 2)
    clock.now += 1
    metrics.record("ep", "A", "A-1", 503, 2000, 100, 2)
    metrics.record("ep", "A", "A-1", 0, None, None, 2)  # delivered, no answer
    assert _sums(metrics, INVOCATIONS) == (4, 4.0)
    assert _sums(metrics, ERRORS_4XX) == (4, 1.0)  # Sum: errors; Sum/SampleCount: the rate
    assert _sums(metrics, ERRORS_5XX) == (4, 2.0)  # the 503 and the unanswered one
    assert _sums(metrics, PER_INSTANCE) == (4, 2.0)
    assert _sums(metrics, MODEL_LATENCY) == (3, 4400.0)  # none for the unanswered one
    assert _sums(metrics, OVERHEAD_LATENCY) == (3, 650.0)
    assert _sums(metrics, INVOCATIONS, instance="A-2") == (1, 1.0)
    second = int(T0) + 1
    assert metrics.buckets("ep", ERRORS_5XX, instance="A-1", start=second) == [
        EndpointMetricBucket("ep", "A", "A-1", ERRORS_5XX, second, 2, 2.0, 1.0, 1.0, {})
    ]
    (first_4xx,) = metrics.buckets("ep", ERRORS_4XX, instance="A-1", end=second)
    assert (first_4xx.count, first_4xx.total, first_4xx.minimum, first_4xx.maximum) == (
        1, 0.0, 0.0, 0.0
    )  # fmt: skip
    latency = metrics.buckets("ep", MODEL_LATENCY, instance="A-1")
    assert [(b.start, b.minimum, b.maximum, b.histogram) for b in latency] == [
        (int(T0), 1500.0, 1500.0, {bin_of(1500): 1}),
        (second, 2000.0, 2000.0, {bin_of(2000): 1}),
    ]
    assert metrics.keys("ep") == sorted(
        [("ep", "A", "A-1", m) for m in METRIC_NAMES]
        + [("ep", "A", "A-2", m) for m in METRIC_NAMES]
    )
    assert metrics.keys("other") == [] and metrics.buckets("other", INVOCATIONS) == []


def test_stored_and_unflushed_buckets_of_the_same_second_merge(
    metrics: EndpointMetrics, metadata: MetadataStore
) -> None:
    for latency in (100, 200, 300):
        metrics.record("ep", "A", "A-1", 200, latency, 10, 1)
    metrics.flush()
    assert len(metadata.endpoint_metric_buckets("ep", MODEL_LATENCY)) == 1
    for latency in (400, 50_000):
        metrics.record("ep", "A", "A-1", 200, latency, 10, 1)  # the same second
    (merged,) = metrics.buckets("ep", MODEL_LATENCY)
    assert (merged.count, merged.total, merged.minimum, merged.maximum) == (5, 51_000, 100, 50_000)
    assert percentile(merged.histogram, 50) == pytest.approx(300, rel=0.02)
    assert percentile(merged.histogram, 100) == pytest.approx(50_000, rel=0.02)
    metrics.flush()
    (stored,) = metadata.endpoint_metric_buckets("ep", MODEL_LATENCY)
    assert stored == merged
    assert metrics.buckets("ep", MODEL_LATENCY) == [merged]  # nothing counted twice
    metrics.flush()  # nothing pending: nothing written
    assert metadata.endpoint_metric_buckets("ep", MODEL_LATENCY) == [merged]


def test_a_failed_flush_keeps_its_buckets_for_the_next(
    metrics: EndpointMetrics, metadata: MetadataStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics.record("ep", "A", "A-1", 200, 100, 10, 1)
    calls = []

    def unavailable(buckets: list[EndpointMetricBucket]) -> None:
        calls.append(len(buckets))
        raise OSError("the database is away")

    # The store's own write replaced for one flush: a database that is down cannot be made here.
    monkeypatch.setattr(metadata, "add_endpoint_metric_buckets", unavailable)
    with pytest.raises(OSError):
        metrics.flush()
    assert calls == [6] and _sums(metrics, INVOCATIONS) == (1, 1.0)  # still answered
    monkeypatch.undo()
    metrics.record("ep", "A", "A-1", 200, 100, 10, 1)
    metrics.flush()
    assert [b.count for b in metadata.endpoint_metric_buckets("ep", INVOCATIONS)] == [2]
    assert _sums(metrics, INVOCATIONS) == (2, 2.0)


def test_retention_drops_old_buckets(
    metadata: MetadataStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    metrics = EndpointMetrics(metadata, retention_days=1, clock=clock)
    metrics.record("ep", "A", "A-1", 200, 100, 10, 1)
    clock.now += 86400 - 5
    metrics.record("ep", "A", "A-1", 200, 100, 10, 1)
    metrics.flush()
    clock.now += 10  # the first second is now more than a day old
    metrics._sweep()
    assert [b.start for b in metrics.buckets("ep", INVOCATIONS)] == [int(T0) + 86395]
    metrics._sweep()  # at most one sweep per interval
    assert len(metadata.endpoint_metric_buckets("ep", INVOCATIONS)) == 1


def test_recent_invocations_newest_first_and_at_most_200(
    metrics: EndpointMetrics, clock: Clock
) -> None:
    for i in range(RECENT + 50):
        clock.now = T0 + i
        metrics.record("ep", "A", f"A-{i % 3 + 1}", 200 if i % 7 else 500, 1000 + i, 10, 3)
    metrics.record("other", "B", "B-1", 0, None, None, 1)
    recent = metrics.recent("ep")
    assert len(recent) == RECENT
    assert [r.time for r in recent] == [T0 + i for i in reversed(range(50, RECENT + 50))]
    newest = recent[0]
    i = RECENT + 49
    assert (newest.variant, newest.instance, newest.status, newest.model_microseconds) == (
        "A", f"A-{i % 3 + 1}", 200 if i % 7 else 500, 1000 + i
    )  # fmt: skip
    assert [(r.status, r.model_microseconds) for r in metrics.recent("other")] == [(0, None)]
    assert metrics.recent("none") == []


def test_totals_for_prometheus(metrics: EndpointMetrics) -> None:
    metrics.record("ep", "A", "A-1", 200, 900, 5, 1)  # 0.9 ms: below the first bound
    metrics.record("ep", "A", "A-1", 200, 1000, 5, 1)  # 1 ms: the first bound's (le)
    metrics.record("ep", "A", "A-1", 404, 70_000_000, 5, 1)  # past the last bound
    metrics.record("ep", "A", "A-1", 0, None, None, 1)
    totals = metrics.totals()
    assert totals.invocations == {
        ("ep", "A", "A-1", "2xx"): 2,
        ("ep", "A", "A-1", "4xx"): 1,
        ("ep", "A", "A-1", "none"): 1,
    }
    model = totals.model_latency[("ep", "A")]
    assert (
        model.counts[0] == 2 and model.counts[len(LATENCY_BOUNDS)] == 1 and sum(model.counts) == 3
    )
    assert model.total_seconds == pytest.approx(70.0019)
    assert sum(totals.overhead_latency[("ep", "A")].counts) == 3


def test_recording_off_records_nothing(metadata: MetadataStore) -> None:
    metrics = EndpointMetrics(metadata, enabled=False)
    metrics.record("ep", "A", "A-1", 200, 100, 10, 1)
    metrics.flush()
    assert metrics.buckets("ep", INVOCATIONS) == [] and metrics.recent("ep") == []
    assert metrics.totals().invocations == {} and metrics.keys() == []


def test_threads_recording_while_the_flusher_runs_lose_nothing(metadata: MetadataStore) -> None:
    metrics = EndpointMetrics(metadata, flush_seconds=0.01)
    metrics.start()
    per_thread, threads = 10_000, 4

    def load(k: int) -> None:
        for i in range(per_thread):
            metrics.record("ep", "A", f"A-{k}", 400 if i % 10 == 0 else 200, 100 + i, 10, threads)
            if i % 500 == 0:
                time.sleep(
                    0.002
                )  # recording spread over a while, as requests come: flushes between

    workers = [threading.Thread(target=load, args=(k,)) for k in range(threads)]
    for w in workers:
        w.start()
    seen = []
    while True:  # a reader meanwhile: never more than was sent
        seen.append(_sums(metrics, INVOCATIONS)[0])
        if not any(w.is_alive() for w in workers):
            break
    for w in workers:
        w.join()
    # A bucket counted twice (in memory and stored) would show as a count that later drops.
    assert all(a <= b for a, b in itertools.pairwise(seen)) and seen[-1] <= threads * per_thread
    metrics.close()
    assert _sums(metrics, INVOCATIONS) == (threads * per_thread, threads * per_thread)
    assert _sums(metrics, ERRORS_4XX)[1] == threads * per_thread / 10
    stored = metadata.endpoint_metric_buckets("ep", MODEL_LATENCY)
    assert sum(b.count for b in stored) == threads * per_thread
    assert sum(sum(b.histogram.values()) for b in stored) == threads * per_thread
    assert sum(b.total for b in metadata.endpoint_metric_buckets("ep", PER_INSTANCE)) == (
        pytest.approx(per_thread)
    )
