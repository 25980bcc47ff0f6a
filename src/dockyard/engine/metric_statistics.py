"""CloudWatch's statistics of a metric over periods: samples grouped into period buckets, and
SampleCount, Average, Sum, Minimum, Maximum and percentiles (pNN.NN) of each bucket.

A bucket holds either the exact sample values (training metrics: every logged value is kept)
or a log-scale histogram (endpoint latencies), so percentiles are exact for the first and within
metric_histogram.RELATIVE_ERROR for the second."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from dockyard.contract.errors import CloudWatchError
from dockyard.engine import metric_histogram

STATISTICS = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
# CloudWatch's high-resolution periods; any other period is a multiple of 60.
HIGH_RESOLUTION_PERIODS = frozenset({1, 5, 10, 30})
_PERCENTILE = re.compile(r"p(\d{1,3}(?:\.\d{1,10})?)")


@dataclass
class Aggregate:
    """The samples of one period (or of one second of an endpoint's metric)."""

    count: int = 0
    total: float = 0.0
    minimum: float = math.inf
    maximum: float = -math.inf
    values: list[float] = field(default_factory=list)  # exact samples, when kept
    histogram: dict[int, int] = field(default_factory=dict)  # else their histogram

    def add_value(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)
        self.values.append(value)

    def add_summary(
        self,
        count: int,
        total: float,
        minimum: float,
        maximum: float,
        histogram: Mapping[int, int],
    ) -> None:
        self.count += count
        self.total += total
        self.minimum = min(self.minimum, minimum)
        self.maximum = max(self.maximum, maximum)
        self.histogram = metric_histogram.merge(self.histogram, histogram)

    def statistic(self, name: str) -> float:
        """One of STATISTICS, or a percentile `pNN.NN` (checked by percentile_of first)."""
        if name == "SampleCount":
            return float(self.count)
        if name == "Average":
            return self.total / self.count
        if name == "Sum":
            return self.total
        if name == "Minimum":
            return self.minimum
        if name == "Maximum":
            return self.maximum
        return self.percentile(percentile_of(name))

    def percentile(self, p: float) -> float:
        """Nearest rank, as metric_histogram's: the ceil(p/100·n)-th smallest sample; p0 is the
        minimum. Without kept values or a histogram (a counter), the samples are only known by
        their extremes: p0 and p100 are still exact, anything between is not known: NaN
        (callers leave it out)."""
        if p <= 0:
            return self.minimum
        if p >= 100:
            return self.maximum
        if self.values:
            ordered = sorted(self.values)
            rank = max(1, math.ceil(round(p * len(ordered) / 100, 9)))
            return ordered[rank - 1]
        if self.histogram:
            # A bin's value is within 2% of its samples; never outside what was seen.
            value = metric_histogram.percentile(self.histogram, p)
            return min(max(value, self.minimum), self.maximum)
        if self.minimum == self.maximum:
            return self.minimum
        return math.nan


def percentile_of(statistic: str) -> float:
    """The p of `pNN.NN`, or CloudWatchError: what CloudWatch accepts is p0.0 to p100."""
    match = _PERCENTILE.fullmatch(statistic)
    p = float(match.group(1)) if match else -1.0
    if not 0 <= p <= 100:
        raise CloudWatchError(
            "InvalidParameterValue",
            f"The statistic {statistic[:64]!r} is not one dockyard can compute: use "
            f"{', '.join(STATISTICS)} or a percentile p0.0 to p100 (e.g. p99.9); trimmed means "
            "and other extended statistics are not supported",
        )
    return p


def check_period(period: int, where: str = "Period") -> None:
    """CloudWatch's rule: 1, 5, 10, 30 (high resolution) or a multiple of 60."""
    if period < 1 or (period not in HIGH_RESOLUTION_PERIODS and period % 60 != 0):
        raise CloudWatchError(
            "InvalidParameterValue",
            f"The parameter {where} must be 1, 5, 10, 30 or a multiple of 60, not {period}.",
        )


def check_interval(start: float, end: float) -> None:
    if not start < end:
        raise CloudWatchError(
            "InvalidParameterValue",
            "The parameter StartTime must be less than the parameter EndTime.",
        )


def aligned_start(start: float, period: int) -> int:
    """The first period's start: StartTime rounded down to the whole minute for periods of a
    minute or more, to the whole second for high-resolution ones (CloudWatch rounds a recent
    StartTime so; its coarser rounding of old data comes from its retention, which dockyard
    does not have: every sample is kept)."""
    unit = 60 if period >= 60 else 1
    return math.floor(start / unit) * unit


def period_count(start: float, end: float, period: int) -> int:
    """How many periods [aligned_start, end) spans: the datapoints a request asks for at most."""
    return math.ceil((end - aligned_start(start, period)) / period)


def bucketed_values(
    samples: Iterable[tuple[float, float]], start: float, end: float, period: int
) -> dict[int, Aggregate]:
    """(timestamp, value) samples in [start, end) by their period's start time."""
    t0 = aligned_start(start, period)
    buckets: dict[int, Aggregate] = {}
    for timestamp, value in samples:
        if t0 <= timestamp < end:
            key = t0 + math.floor((timestamp - t0) / period) * period
            buckets.setdefault(key, Aggregate()).add_value(value)
    return buckets
