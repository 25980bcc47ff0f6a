"""CloudWatch's semantics over a real SQLite metadata store: period alignment, exact and
histogram statistics, dimension matching, endpoint buckets across instances, paging."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.contract.errors import CloudWatchError
from dockyard.engine import metric_histogram
from dockyard.engine.endpoint_metrics import EndpointMetrics
from dockyard.engine.metric_queries import (
    ENDPOINT_NAMESPACE,
    TRAINING_NAMESPACE,
    DataQuery,
    Metric,
    MetricQueries,
    request_fingerprint,
)
from dockyard.engine.metric_statistics import aligned_start, check_period, percentile_of
from dockyard.storage.metadata import EndpointMetricBucket, MetadataStore, MetricPoint

T0 = 1_790_000_040.0  # a whole minute (1_790_000_040 = 29_833_334 · 60)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetadataStore]:
    opened = MetadataStore(f"sqlite:///{tmp_path / 'metadata.db'}")
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def queries(store: MetadataStore) -> MetricQueries:
    # The recorder over the store, its flush thread not started: what it reads is what the
    # tests stored.
    return MetricQueries(store, EndpointMetrics(store))


def loss(job: str, host: str) -> Metric:
    return Metric.of(TRAINING_NAMESPACE, "loss", {"Host": f"{job}/{host}"})


def test_periods_are_cloudwatchs() -> None:
    for good in (1, 5, 10, 30, 60, 120, 3600):
        check_period(good)
    for bad in (0, 2, 15, 45, 61, 90):
        with pytest.raises(CloudWatchError) as refused:
            check_period(bad)
        assert refused.value.code == "InvalidParameterValue"
    # A minute period starts on the minute, a high-resolution one on the second.
    assert aligned_start(T0 + 17.9, 300) == T0
    assert aligned_start(T0 + 17.9, 10) == T0 + 17
    assert percentile_of("p99.9") == 99.9
    assert percentile_of("p0.0") == 0.0
    for bad in ("p101", "tm99", "p", "P50", "p-1"):
        with pytest.raises(CloudWatchError):
            percentile_of(bad)


def test_training_points_by_period_exactly(store: MetadataStore, queries: MetricQueries) -> None:
    # Three points in the first 10 s period (one at its very start), one in the third, and one
    # at EndTime (excluded); another host's point is not this series'.
    store.add_metric_points(
        "job",
        [
            MetricPoint("loss", 3.0, T0 + 0.0, "algo-1"),
            MetricPoint("loss", 1.0, T0 + 4.5, "algo-1"),
            MetricPoint("loss", 2.0, T0 + 9.999, "algo-1"),
            MetricPoint("loss", 7.0, T0 + 25.0, "algo-1"),
            MetricPoint("loss", 9.0, T0 + 30.0, "algo-1"),
            MetricPoint("loss", 100.0, T0 + 1.0, "algo-2"),
        ],
    )
    points = queries.statistics(
        loss("job", "algo-1"),
        T0 + 0.5,  # rounded down to the second: T0 + 0 is in
        T0 + 30.0,
        10,
        ["SampleCount", "Sum", "Average", "Minimum", "Maximum", "p50", "p0.0", "p100"],
    )
    by_time = {p.timestamp: p.statistics for p in points}
    assert by_time == {
        int(T0): {
            "SampleCount": 3.0,
            "Sum": 6.0,
            "Average": 2.0,
            "Minimum": 1.0,
            "Maximum": 3.0,
            "p50": 2.0,
            "p0.0": 1.0,
            "p100": 3.0,
        },
        int(T0 + 20): {
            "SampleCount": 1.0,
            "Sum": 7.0,
            "Average": 7.0,
            "Minimum": 7.0,
            "Maximum": 7.0,
            "p50": 7.0,
            "p0.0": 7.0,
            "p100": 7.0,
        },
    }
    assert {p.unit for p in points} == {"None"}
    # Both hosts together: the TrainingJobName series.
    together = queries.statistics(
        Metric.of(TRAINING_NAMESPACE, "loss", {"TrainingJobName": "job"}), T0, T0 + 10, 10, ["Sum"]
    )
    assert [p.statistics for p in together] == [{"Sum": 106.0}]
    # Dimensions match exactly: both at once, or a unit it does not have, name no series.
    both = {"TrainingJobName": "job", "Host": "job/algo-1"}
    assert (
        queries.statistics(Metric.of(TRAINING_NAMESPACE, "loss", both), T0, T0 + 60, 60, ["Sum"])
        == []
    )
    assert queries.statistics(loss("job", "algo-1"), T0, T0 + 60, 60, ["Sum"], "Count") == []


def test_more_than_1440_datapoints_are_refused(queries: MetricQueries) -> None:
    metric = loss("job", "algo-1")
    assert queries.statistics(metric, T0, T0 + 1440, 1, ["Sum"]) == []
    with pytest.raises(CloudWatchError) as refused:
        queries.statistics(metric, T0, T0 + 1441, 1, ["Sum"])
    assert refused.value.code == "InvalidParameterCombination"


def bucket(instance: str, second: float, metric: str, samples: list[float]) -> EndpointMetricBucket:
    histogram: dict[int, int] = {}
    for s in samples:
        b = metric_histogram.bin_of(s)
        histogram[b] = histogram.get(b, 0) + 1
    return EndpointMetricBucket(
        "ep",
        "AllTraffic",
        instance,
        metric,
        int(second),
        len(samples),
        sum(samples),
        min(samples),
        max(samples),
        histogram if metric == "ModelLatency" else {},
    )


def test_endpoint_metrics_per_variant_and_per_instance(
    store: MetadataStore, queries: MetricQueries
) -> None:
    latencies_1 = [float(v) for v in range(100, 1100, 10)]  # 100 samples
    latencies_2 = [5000.0] * 50
    store.add_endpoint_metric_buckets(
        [
            bucket("AllTraffic-1", T0 + 1, "ModelLatency", latencies_1),
            bucket("AllTraffic-2", T0 + 59, "ModelLatency", latencies_2),
            bucket("AllTraffic-1", T0 + 1, "Invocations", [1.0] * 100),
            bucket("AllTraffic-2", T0 + 59, "Invocations", [1.0] * 50),
            bucket("AllTraffic-2", T0 + 61, "Invocations", [1.0] * 7),
        ]
    )
    variant = {"EndpointName": "ep", "VariantName": "AllTraffic"}
    invocations = Metric.of(ENDPOINT_NAMESPACE, "Invocations", variant)
    points = queries.statistics(invocations, T0, T0 + 120, 60, ["Sum", "SampleCount", "p50"])
    by_time = {p.timestamp: p for p in points}
    assert by_time[int(T0)].statistics == {"Sum": 150.0, "SampleCount": 150.0, "p50": 1.0}
    assert by_time[int(T0 + 60)].statistics["Sum"] == 7.0
    assert by_time[int(T0)].unit == "None"

    latency = Metric.of(ENDPOINT_NAMESPACE, "ModelLatency", variant)
    (point,) = queries.statistics(latency, T0, T0 + 60, 60, ["p50", "p99", "Maximum", "Average"])
    assert point.unit == "Microseconds"
    every = sorted(latencies_1 + latencies_2)
    for name, p in (("p50", 50), ("p99", 99)):
        exact = every[math.ceil(p * len(every) / 100) - 1]
        assert point.statistics[name] == pytest.approx(exact, rel=metric_histogram.RELATIVE_ERROR)
    assert point.statistics["Maximum"] == 5000.0
    assert point.statistics["Average"] == pytest.approx(sum(every) / len(every))

    one = Metric.of(ENDPOINT_NAMESPACE, "ModelLatency", {**variant, "InstanceId": "AllTraffic-2"})
    (point,) = queries.statistics(one, T0, T0 + 60, 60, ["SampleCount", "p50"])
    assert point.statistics["SampleCount"] == 50.0
    assert point.statistics["p50"] == 5000.0  # one bin, clamped to what was seen

    listed, token = queries.list_metrics(namespace=ENDPOINT_NAMESPACE, metric_name="ModelLatency")
    assert token is None
    # Sorted by (name, value) of their dimensions: InstanceId before VariantName.
    assert [dict(m.dimensions).get("InstanceId") for m in listed] == [
        "AllTraffic-1",
        "AllTraffic-2",
        None,
    ]


def test_metric_data_pages_in_query_order(store: MetadataStore, queries: MetricQueries) -> None:
    store.add_metric_points("job", [MetricPoint("loss", float(i), T0 + i) for i in range(10)])
    metric = loss("job", "algo-1")
    asked = [
        DataQuery("a", metric, 1, "Maximum"),
        DataQuery("b", metric, 5, "Sum", label="five"),
    ]
    fingerprint = request_fingerprint({"q": "same"})
    results, token = queries.metric_data(
        asked, T0, T0 + 10, descending=False, max_datapoints=7, fingerprint=fingerprint
    )
    assert [(r.id, r.values, r.complete) for r in results] == [
        ("a", [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0], False),
        ("b", [], False),
    ]
    results, token = queries.metric_data(
        asked,
        T0,
        T0 + 10,
        descending=False,
        max_datapoints=7,
        next_token=token,
        fingerprint=fingerprint,
    )
    assert token is None
    assert [(r.id, r.label, r.values, r.complete) for r in results] == [
        ("a", "loss", [7.0, 8.0, 9.0], True),
        ("b", "five", [10.0, 35.0], True),
    ]
    with pytest.raises(CloudWatchError) as other_request:
        queries.metric_data(asked, T0, T0 + 10, next_token=token or "MTox", fingerprint="x")
    assert other_request.value.code == "InvalidNextToken"


def test_list_metrics_filters_and_recently_active(
    store: MetadataStore, queries: MetricQueries
) -> None:
    store.add_metric_points("old", [MetricPoint("loss", 1.0, T0, "algo-1")])
    store.add_metric_points("new", [MetricPoint("loss", 1.0, T0 + 4 * 3600, "algo-2")])
    listed, _ = queries.list_metrics(filters=[("Host", None)])
    assert [m.dimensions for m in listed] == [
        (("Host", "new/algo-2"),),
        (("Host", "old/algo-1"),),
    ]
    listed, _ = queries.list_metrics(filters=[("TrainingJobName", "old")])
    assert [m.dimensions for m in listed] == [(("TrainingJobName", "old"),)]
    # Active in the 3 hours before T0 + 5 h: only the new job's series.
    now = T0 + 5 * 3600
    listed, _ = queries.list_metrics(active_between=(now - 3 * 3600, now))
    assert {dict(m.dimensions).get("TrainingJobName", "") for m in listed} == {"", "new"}
    assert all("old" not in str(m.dimensions) for m in listed)
    assert len(listed) == 2
