"""Log-scale latency histograms: every percentile of random samples within 2% of the exact
nearest-rank percentile, merging, and the edges (zero, tiny and huge values, bad p)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dockyard.engine.metric_histogram import (
    RELATIVE_ERROR,
    ZERO_BIN,
    bin_of,
    bin_value,
    merge,
    percentile,
)

LATENCIES = st.floats(min_value=1e-3, max_value=1e12, allow_nan=False, allow_infinity=False)
PERCENTILES = st.sampled_from([0.1, 1, 10, 25, 50, 75, 90, 95, 99, 99.9, 100]) | st.floats(
    min_value=0.01, max_value=100
)


def _exact(samples: list[float], p: float) -> float:
    """The nearest-rank percentile, with the rank computed exactly."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(Fraction(p) * len(ordered) / 100 - Fraction(1, 10**9)))
    return ordered[rank - 1]


def _histogram(samples: list[float]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for v in samples:
        counts[bin_of(v)] = counts.get(bin_of(v), 0) + 1
    return counts


@settings(max_examples=300, deadline=None)
@given(st.lists(LATENCIES, min_size=1, max_size=300), PERCENTILES)
def test_a_percentile_is_within_two_percent_of_the_exact_one(
    samples: list[float], p: float
) -> None:
    exact = _exact(samples, p)
    estimate = percentile(_histogram(samples), p)
    assert abs(estimate - exact) <= RELATIVE_ERROR * exact * (1 + 1e-9), (exact, estimate)


@settings(max_examples=200, deadline=None)
@given(st.lists(LATENCIES, min_size=1, max_size=100), st.lists(LATENCIES, max_size=100))
def test_merged_histograms_answer_as_one_of_all_samples(a: list[float], b: list[float]) -> None:
    merged = merge(_histogram(a), _histogram(b))
    assert merged == _histogram(a + b)
    for p in (50, 90, 99):
        exact = _exact(a + b, p)
        assert abs(percentile(merged, p) - exact) <= RELATIVE_ERROR * exact * (1 + 1e-9)


@given(LATENCIES)
def test_each_value_is_within_two_percent_of_its_bin_value(value: float) -> None:
    assert abs(bin_value(bin_of(value)) - value) <= RELATIVE_ERROR * value * (1 + 1e-9)


def test_bins_are_few_for_the_latencies_of_an_endpoint() -> None:
    # One microsecond to one hour of latencies in microseconds: a few hundred bins at most.
    assert bin_of(3.6e9) - bin_of(1.0) < 600
    assert bin_of(1.0) == 0 and bin_of(1.05) == 2


def test_zero_and_negative_values_have_a_bin_of_their_own() -> None:
    assert bin_of(0.0) == bin_of(-3.0) == ZERO_BIN and bin_value(ZERO_BIN) == 0.0
    assert bin_of(5e-324) > ZERO_BIN  # the smallest positive float is not zero
    assert percentile({ZERO_BIN: 3, bin_of(10.0): 1}, 75) == 0.0
    assert percentile({ZERO_BIN: 3, bin_of(10.0): 1}, 100) == pytest.approx(10.0, rel=0.02)


def test_the_nearest_rank_of_p99_of_100_samples_is_the_99th() -> None:
    # 0.99 * 100 is 99.00000000000001 in floats: its ceiling would be the 100th sample.
    counts = _histogram([*(float(v) for v in range(1, 100)), 1000.0])
    assert percentile(counts, 99) == pytest.approx(99.0, rel=0.02)
    assert percentile(counts, 100) == pytest.approx(1000.0, rel=0.02)


def test_bad_percentiles_and_empty_histograms_are_refused() -> None:
    for p in (0, -1, 100.5, math.nan):
        with pytest.raises(ValueError, match="percentile is in"):
            percentile({1: 1}, p)
    with pytest.raises(ValueError, match="no samples"):
        percentile({}, 50)
