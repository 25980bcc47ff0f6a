"""Log-scale histograms of latencies: a value's bin, a bin's value within 2% of every value in
it, and percentiles of merged histograms (CloudWatch's p50/p99 of an endpoint's latencies
without keeping every sample). Bins as DDSketch has them: bin b holds (g^(b-1), g^b] with
g = (1 + a) / (1 - a), and its value 2 g^b / (g + 1) is within a (relative) of each of them."""

from __future__ import annotations

import math
from collections.abc import Mapping

RELATIVE_ERROR = 0.02
_GAMMA = (1 + RELATIVE_ERROR) / (1 - RELATIVE_ERROR)
_LOG_GAMMA = math.log(_GAMMA)
# Zero and below (a latency cannot be less; a clock stepped back can make one): a bin of their
# own, below the bin of the smallest positive float (about -18,600).
ZERO_BIN = -100_000


def bin_of(value: float) -> int:
    if not value > 0:
        return ZERO_BIN
    return math.ceil(math.log(value) / _LOG_GAMMA)


def bin_value(b: int) -> float:
    if b <= ZERO_BIN:
        return 0.0
    return 2 * math.exp(b * _LOG_GAMMA) / (_GAMMA + 1)


def merge(a: Mapping[int, int], b: Mapping[int, int]) -> dict[int, int]:
    merged = dict(a)
    for k, n in b.items():
        merged[k] = merged.get(k, 0) + n
    return merged


def percentile(counts: Mapping[int, int], p: float) -> float:
    """The nearest-rank p-th percentile (p in (0, 100]) of the samples the histogram counts:
    the value of the bin that holds the ceil(p/100 * n)-th smallest sample."""
    if not 0 < p <= 100:
        raise ValueError(f"a percentile is in (0, 100], not {p}")
    total = sum(counts.values())
    if total <= 0:
        raise ValueError("a percentile of no samples")
    # Rounded first: 0.99 * 100 is 99.00000000000001 in floats, whose ceiling is one rank too far.
    rank = max(1, math.ceil(round(p * total / 100, 9)))
    seen = 0
    for b in sorted(counts):
        seen += counts[b]
        if seen >= rank:
            return bin_value(b)
    raise AssertionError("unreachable: the ranks add up to the total")
