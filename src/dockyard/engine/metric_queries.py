"""The CloudWatch metrics dockyard publishes, queried as CloudWatch does: which series a
namespace and dimensions name, their statistics over periods (GetMetricStatistics,
GetMetricData) and their listing (ListMetrics).

Series, by namespace (dimensions must match a series' exactly, as in CloudWatch):
- `/aws/sagemaker/TrainingJobs`: `{Host: <job>/algo-<n>}`, one host's points, which is what
  SageMaker publishes; and `{TrainingJobName: <job>}`, every host's points together, which
  SageMaker does not publish but the SageMaker SDK's TrainingJobAnalytics asks for (with
  Average over 60 s periods): served so that the SDK reads the job's curve.
- `AWS/SageMaker`: `{EndpointName, VariantName}`, the variant's instances together, as SageMaker
  publishes endpoint metrics; and, a dockyard extension, `{EndpointName, VariantName,
  InstanceId}` for one instance (the id DescribeEndpoint's instances carry).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dockyard.contract.errors import CloudWatchError
from dockyard.engine.endpoint_metrics import EndpointMetrics
from dockyard.engine.metric_statistics import (
    STATISTICS,
    Aggregate,
    aligned_start,
    bucketed_values,
    check_interval,
    check_period,
    percentile_of,
    period_count,
)
from dockyard.storage.metadata import MetadataStore

TRAINING_NAMESPACE = "/aws/sagemaker/TrainingJobs"
ENDPOINT_NAMESPACE = "AWS/SageMaker"
INSTANCE_DIMENSION = "InstanceId"  # dockyard's own: one instance of a variant
LATENCY_METRICS = frozenset({"ModelLatency", "OverheadLatency"})  # microseconds, as SageMaker
MAX_STATISTICS_DATAPOINTS = 1440  # GetMetricStatistics' limit per request
MAX_METRIC_DATA_DATAPOINTS = 100_800  # GetMetricData's default MaxDatapoints
LIST_PAGE = 500  # ListMetrics answers up to 500 metrics a page


@dataclass(frozen=True, order=True)
class Metric:
    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]  # (name, value), sorted by name

    @classmethod
    def of(cls, namespace: str, metric_name: str, dimensions: Mapping[str, str]) -> Metric:
        return cls(namespace, metric_name, tuple(sorted(dimensions.items())))


@dataclass(frozen=True)
class Datapoint:
    timestamp: int  # the period's start, epoch seconds
    statistics: dict[str, float]  # by statistic name (`Sum`, `p99`)
    unit: str


@dataclass(frozen=True)
class DataQuery:
    """One MetricDataQuery with a MetricStat (expressions are refused before this)."""

    id: str
    metric: Metric
    period: int
    stat: str
    unit: str | None = None
    label: str | None = None
    return_data: bool = True


@dataclass(frozen=True)
class DataResult:
    id: str
    label: str
    timestamps: list[int]
    values: list[float]
    complete: bool  # False: more of it on a later page (StatusCode PartialData)


def unit_of(metric: Metric) -> str:
    if metric.namespace == ENDPOINT_NAMESPACE and metric.metric_name in LATENCY_METRICS:
        return "Microseconds"
    return "None"


class MetricQueries:
    """Reads the training points in the metadata store and the endpoints' per-second buckets
    (the recorder's: stored and not yet flushed alike, so an invocation counts at once)."""

    def __init__(self, metadata: MetadataStore, endpoint_metrics: EndpointMetrics) -> None:
        self.metadata = metadata
        self.endpoint_metrics = endpoint_metrics

    # -- GetMetricStatistics ------------------------------------------------------------------

    def statistics(
        self,
        metric: Metric,
        start: float,
        end: float,
        period: int,
        statistics: Sequence[str],
        unit: str | None = None,
    ) -> list[Datapoint]:
        """Every period with samples, in no particular order (as CloudWatch: callers sort)."""
        check_period(period)
        check_interval(start, end)
        asked = period_count(start, end, period)
        if asked > MAX_STATISTICS_DATAPOINTS:
            raise CloudWatchError(
                "InvalidParameterCombination",
                f"You have requested up to {asked} datapoints, which exceeds the limit of "
                f"{MAX_STATISTICS_DATAPOINTS}. You may reduce the datapoints requested by "
                "increasing Period, or decreasing the time range.",
            )
        for name in statistics:
            if name not in STATISTICS:
                percentile_of(name)
        periods, series_unit = self.periods(metric, start, end, period, unit)
        return [
            Datapoint(t, _statistics_of(aggregate, statistics), series_unit)
            for t, aggregate in periods.items()
        ]

    def periods(
        self, metric: Metric, start: float, end: float, period: int, unit: str | None = None
    ) -> tuple[dict[int, Aggregate], str]:
        """The series' samples in [start, end) by period start; none when `unit` is not its
        unit (CloudWatch keeps a series per unit) or no series has those dimensions."""
        series_unit = unit_of(metric)
        if unit is not None and unit != series_unit:
            return {}, series_unit
        dimensions = dict(metric.dimensions)
        if metric.namespace == TRAINING_NAMESPACE:
            return self._training_periods(metric.metric_name, dimensions, start, end, period), (
                series_unit
            )
        if metric.namespace == ENDPOINT_NAMESPACE:
            return self._endpoint_periods(metric.metric_name, dimensions, start, end, period), (
                series_unit
            )
        return {}, series_unit

    def _training_periods(
        self, name: str, dimensions: dict[str, str], start: float, end: float, period: int
    ) -> dict[int, Aggregate]:
        job, host = _training_series(dimensions)
        if job is None:
            return {}
        t0 = aligned_start(start, period)
        points = self.metadata.metric_series(job, name, host=host, start=t0, end=end)
        return bucketed_values(((p.timestamp, p.value) for p in points), t0, end, period)

    def _endpoint_periods(
        self, name: str, dimensions: dict[str, str], start: float, end: float, period: int
    ) -> dict[int, Aggregate]:
        names = set(dimensions)
        if names - {INSTANCE_DIMENSION} != {"EndpointName", "VariantName"}:
            return {}
        t0 = aligned_start(start, period)
        buckets = self.endpoint_metrics.buckets(
            dimensions["EndpointName"],
            name,
            variant=dimensions["VariantName"],
            instance=dimensions.get(INSTANCE_DIMENSION),
            start=t0,
            end=math.ceil(end),
        )
        periods: dict[int, Aggregate] = {}
        for b in buckets:
            if t0 <= b.start < end:  # a bucket is one second: it lies in one period
                key = t0 + (b.start - t0) // period * period
                periods.setdefault(key, Aggregate()).add_summary(
                    b.count, b.total, b.minimum, b.maximum, b.histogram
                )
        return periods

    # -- GetMetricData ------------------------------------------------------------------------

    def metric_data(
        self,
        queries: Sequence[DataQuery],
        start: float,
        end: float,
        *,
        descending: bool = True,
        max_datapoints: int = MAX_METRIC_DATA_DATAPOINTS,
        next_token: str | None = None,
        fingerprint: str = "",
    ) -> tuple[list[DataResult], str | None]:
        """The queries' datapoints, `max_datapoints` at most per answer, in query order and
        by time (newest first unless not `descending`); the token resumes where one stopped.
        `fingerprint` names the request, so a token is taken back only by the same request."""
        check_interval(start, end)
        if max_datapoints < 1:
            raise CloudWatchError(
                "InvalidParameterValue", "The parameter MaxDatapoints must be at least 1."
            )
        offset = decode_token(next_token, fingerprint)
        series: list[tuple[DataQuery, list[tuple[int, float]]]] = []
        for query in queries:
            check_period(query.period, f"Period of MetricDataQueries id {query.id}")
            if query.stat not in STATISTICS:
                percentile_of(query.stat)
            if not query.return_data:
                continue
            periods, _ = self.periods(query.metric, start, end, query.period, query.unit)
            points = sorted(
                ((t, a.statistic(query.stat)) for t, a in periods.items()),
                reverse=descending,
            )
            series.append((query, [(t, v) for t, v in points if not math.isnan(v)]))
        results, position = [], 0
        budget_end = offset + max_datapoints
        for query, points in series:
            first, last = position, position + len(points)
            window = points[max(0, offset - first) : max(0, min(last, budget_end) - first)]
            results.append(
                DataResult(
                    query.id,
                    query.label if query.label is not None else query.metric.metric_name,
                    [t for t, _ in window],
                    [v for _, v in window],
                    complete=last <= budget_end,
                )
            )
            position = last
        token = encode_token(budget_end, fingerprint) if position > budget_end else None
        return results, token

    # -- ListMetrics --------------------------------------------------------------------------

    def list_metrics(
        self,
        namespace: str | None = None,
        metric_name: str | None = None,
        filters: Sequence[tuple[str, str | None]] = (),
        next_token: str | None = None,
        fingerprint: str = "",
        active_between: tuple[float, float] | None = None,
    ) -> tuple[list[Metric], str | None]:
        """Every series matching the filters (a filter names a dimension the series has, and
        its value if given), sorted, a page at a time. `active_between`: only series with a
        sample in that interval (RecentlyActive)."""
        offset = decode_token(next_token, fingerprint)
        found = sorted(
            m
            for m in self._every_metric()
            if (namespace is None or m.namespace == namespace)
            and (metric_name is None or m.metric_name == metric_name)
            and _matches(m, filters)
        )
        if active_between is not None:
            since, now = active_between
            found = [m for m in found if self.periods(m, since, now, 60)[0]]
        page = found[offset : offset + LIST_PAGE]
        more = offset + LIST_PAGE < len(found)
        return page, encode_token(offset + LIST_PAGE, fingerprint) if more else None

    def _every_metric(self) -> Iterator[Metric]:
        seen: set[Metric] = set()
        for job, name, host in self.metadata.training_metric_keys():
            for metric in (
                Metric.of(TRAINING_NAMESPACE, name, {"TrainingJobName": job}),
                Metric.of(TRAINING_NAMESPACE, name, {"Host": f"{job}/{host}"}),
            ):
                if metric not in seen:
                    seen.add(metric)
                    yield metric
        for endpoint, variant, instance, name in self.endpoint_metrics.keys():  # noqa: SIM118
            variant_dimensions = {"EndpointName": endpoint, "VariantName": variant}
            for metric in (
                Metric.of(ENDPOINT_NAMESPACE, name, variant_dimensions),
                Metric.of(
                    ENDPOINT_NAMESPACE, name, {**variant_dimensions, INSTANCE_DIMENSION: instance}
                ),
            ):
                if metric not in seen:
                    seen.add(metric)
                    yield metric


def _training_series(dimensions: dict[str, str]) -> tuple[str | None, str | None]:
    """(job, host) the dimensions name; (None, None) for no training series; host None: all."""
    if set(dimensions) == {"TrainingJobName"}:
        return dimensions["TrainingJobName"], None
    if set(dimensions) == {"Host"}:
        job, slash, host = dimensions["Host"].rpartition("/")
        if slash and job and host:
            return job, host
    return None, None


def _matches(metric: Metric, filters: Sequence[tuple[str, str | None]]) -> bool:
    dimensions = dict(metric.dimensions)
    return all(
        name in dimensions and (value is None or dimensions[name] == value)
        for name, value in filters
    )


def _statistics_of(aggregate: Aggregate, names: Sequence[str]) -> dict[str, float]:
    """The asked statistics of one period; a percentile not known (of a counter) is left out."""
    values = {name: aggregate.statistic(name) for name in names}
    return {name: v for name, v in values.items() if not math.isnan(v)}


# -- NextToken: an offset, bound to the request it continues ---------------------------------


def request_fingerprint(request: Mapping[str, Any]) -> str:
    """A short digest of a request without its NextToken: a token from one request is refused
    by another (its offset would mean nothing there)."""
    rest = {k: v for k, v in request.items() if k != "NextToken"}
    text = json.dumps(rest, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_token(offset: int, fingerprint: str) -> str:
    return base64.urlsafe_b64encode(f"{offset}:{fingerprint}".encode()).decode()


def decode_token(token: str | None, fingerprint: str) -> int:
    if not token:
        return 0
    try:
        offset, _, given = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
        if given != fingerprint or not (offset.isascii() and offset.isdigit()) or len(offset) > 12:
            raise ValueError
        return int(offset)
    except ValueError:
        raise CloudWatchError(
            "InvalidNextToken",
            "The NextToken is not one dockyard gave for this request: send the request again "
            "without it, and then the NextToken of its answer",
        ) from None
