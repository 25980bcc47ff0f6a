"""Metrics in the metadata database: training jobs' metric points (per host that printed them)
and endpoints' per-second metric buckets (per instance), what CloudWatch's GetMetricData and
ListMetrics read."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select, tuple_

from dockyard.storage.log_events import LogEventStore
from dockyard.storage.tables import EndpointMetricBucketRow, MetricPointRow

DEFAULT_HOST = "algo-1"


@dataclass(frozen=True)
class MetricPoint:
    metric_name: str
    value: float
    timestamp: float
    host: str = DEFAULT_HOST  # the training host that printed it


@dataclass(frozen=True)
class EndpointMetricBucket:
    """One second of one metric of one instance of an endpoint's variant."""

    endpoint: str
    variant: str
    instance: str  # the instance's name, e.g. "AllTraffic-1"
    metric_name: str  # SageMaker's name: Invocations, ModelLatency, ...
    start: int  # epoch second; the bucket covers [start, start + 1)
    count: int  # samples
    total: float  # their sum
    minimum: float
    maximum: float
    histogram: dict[int, int] = field(default_factory=dict)  # bin -> samples; {} for counters

    @property
    def key(self) -> tuple[str, str, str, str, int]:
        return (self.endpoint, self.variant, self.instance, self.metric_name, self.start)

    def merged(self, other: EndpointMetricBucket) -> EndpointMetricBucket:
        """Both buckets' samples as one bucket (same key)."""
        histogram = dict(self.histogram)
        for b, n in other.histogram.items():
            histogram[b] = histogram.get(b, 0) + n
        return EndpointMetricBucket(
            self.endpoint,
            self.variant,
            self.instance,
            self.metric_name,
            self.start,
            self.count + other.count,
            self.total + other.total,
            min(self.minimum, other.minimum),
            max(self.maximum, other.maximum),
            histogram,
        )


def _point(row: MetricPointRow) -> MetricPoint:
    return MetricPoint(row.metric_name, row.value, row.timestamp, row.host)


def _bucket(row: EndpointMetricBucketRow) -> EndpointMetricBucket:
    return EndpointMetricBucket(
        endpoint=row.endpoint,
        variant=row.variant,
        instance=row.instance,
        metric_name=row.metric_name,
        start=row.start,
        count=row.count,
        total=row.total,
        minimum=row.minimum,
        maximum=row.maximum,
        histogram={int(b): n for b, n in json.loads(row.histogram).items()},
    )


def _histogram_text(histogram: dict[int, int]) -> str:
    return json.dumps({str(b): n for b, n in sorted(histogram.items())}, separators=(",", ":"))


class MetricStore(LogEventStore):
    """Training and endpoint metrics; MetadataStore is one, with everything else."""

    # -- training jobs' metric points ------------------------------------------------------

    def add_metric_points(self, name: str, points: Sequence[MetricPoint]) -> None:
        if not points:
            return
        with self._write() as session:
            session.add_all(
                MetricPointRow(
                    job_name=name,
                    metric_name=p.metric_name,
                    value=p.value,
                    timestamp=p.timestamp,
                    host=p.host,
                )
                for p in points
            )

    def final_metrics(self, name: str) -> list[MetricPoint]:
        """The last value of every metric, from whichever host printed it last (what
        FinalMetricDataList reports), by name in byte order."""
        last_ids = (
            select(func.max(MetricPointRow.id))
            .where(MetricPointRow.job_name == name)
            .group_by(MetricPointRow.metric_name)
        )
        query = (
            select(MetricPointRow)
            .where(MetricPointRow.id.in_(last_ids))
            .order_by(self._db.binary(MetricPointRow.metric_name))
        )
        with self._sessions() as session:
            return [_point(r) for r in session.scalars(query)]

    def metric_series(
        self,
        name: str,
        metric_name: str,
        host: str | None = None,
        start: float | None = None,
        end: float | None = None,
    ) -> list[MetricPoint]:
        """One metric's points in the order recorded; `start` inclusive, `end` exclusive."""
        query = select(MetricPointRow).where(
            MetricPointRow.job_name == name, MetricPointRow.metric_name == metric_name
        )
        if host is not None:
            query = query.where(MetricPointRow.host == host)
        if start is not None:
            query = query.where(MetricPointRow.timestamp >= start)
        if end is not None:
            query = query.where(MetricPointRow.timestamp < end)
        with self._sessions() as session:
            return [_point(r) for r in session.scalars(query.order_by(MetricPointRow.id))]

    def training_metric_keys(self, job: str | None = None) -> list[tuple[str, str, str]]:
        """Distinct (job, metric name, host), sorted (by code point, on both backends)."""
        query = select(
            MetricPointRow.job_name, MetricPointRow.metric_name, MetricPointRow.host
        ).distinct()
        if job is not None:
            query = query.where(MetricPointRow.job_name == job)
        with self._sessions() as session:
            return sorted((j, m, h) for j, m, h in session.execute(query))

    # -- endpoints' per-second buckets ----------------------------------------------------

    def add_endpoint_metric_buckets(self, buckets: Sequence[EndpointMetricBucket]) -> None:
        """Store buckets; one whose key a stored bucket has is merged into it (a flush of the
        same second from a later batch, or from before a restart)."""
        incoming: dict[tuple[str, str, str, str, int], EndpointMetricBucket] = {}
        for b in buckets:
            had = incoming.get(b.key)
            incoming[b.key] = b if had is None else had.merged(b)
        if not incoming:
            return
        rows = EndpointMetricBucketRow
        columns = (rows.endpoint, rows.variant, rows.instance, rows.metric_name, rows.start)
        with self._write() as session:
            keys = list(incoming)
            stored: dict[tuple[str, str, str, str, int], EndpointMetricBucketRow] = {}
            # In slices: a tuple IN of thousands of keys is a long statement on either backend.
            for i in range(0, len(keys), 200):
                found = session.scalars(
                    select(rows).where(tuple_(*columns).in_(keys[i : i + 200])).with_for_update()
                )
                stored.update({_bucket(r).key: r for r in found})
            for key, bucket in incoming.items():
                row = stored.get(key)
                if row is None:
                    session.add(
                        EndpointMetricBucketRow(
                            endpoint=bucket.endpoint,
                            variant=bucket.variant,
                            instance=bucket.instance,
                            metric_name=bucket.metric_name,
                            start=bucket.start,
                            count=bucket.count,
                            total=bucket.total,
                            minimum=bucket.minimum,
                            maximum=bucket.maximum,
                            histogram=_histogram_text(bucket.histogram),
                        )
                    )
                    continue
                both = _bucket(row).merged(bucket)
                row.count, row.total = both.count, both.total
                row.minimum, row.maximum = both.minimum, both.maximum
                row.histogram = _histogram_text(both.histogram)

    def endpoint_metric_buckets(
        self,
        endpoint: str,
        metric_name: str,
        variant: str | None = None,
        instance: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> list[EndpointMetricBucket]:
        """Buckets ordered by start (then variant, instance); `start` inclusive, `end`
        exclusive."""
        rows = EndpointMetricBucketRow
        query = select(rows).where(rows.endpoint == endpoint, rows.metric_name == metric_name)
        if variant is not None:
            query = query.where(rows.variant == variant)
        if instance is not None:
            query = query.where(rows.instance == instance)
        if start is not None:
            query = query.where(rows.start >= start)
        if end is not None:
            query = query.where(rows.start < end)
        with self._sessions() as session:
            found = [_bucket(r) for r in session.scalars(query)]
        return sorted(found, key=lambda b: (b.start, b.variant, b.instance))

    def endpoint_metric_keys(self, endpoint: str | None = None) -> list[tuple[str, str, str, str]]:
        """Distinct (endpoint, variant, instance, metric name), sorted."""
        rows = EndpointMetricBucketRow
        query = select(rows.endpoint, rows.variant, rows.instance, rows.metric_name).distinct()
        if endpoint is not None:
            query = query.where(rows.endpoint == endpoint)
        with self._sessions() as session:
            return sorted((e, v, i, m) for e, v, i, m in session.execute(query))

    def delete_endpoint_metrics_before(self, start: int) -> int:
        """Drop buckets that began before `start` (retention); how many went."""
        with self._write() as session:
            result = session.execute(
                delete(EndpointMetricBucketRow).where(EndpointMetricBucketRow.start < start)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
