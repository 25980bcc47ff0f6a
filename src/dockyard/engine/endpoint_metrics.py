"""Endpoints' invocation metrics as SageMaker publishes them (namespace AWS/SageMaker, per
EndpointName and VariantName; kept per instance too): per-second buckets gathered in memory on
the router's hot path, flushed to the metadata store by a thread and answered stored and
unflushed alike; running totals for Prometheus; each endpoint's last invocations.

Per invocation an instance answered (any status): Invocations 1; Invocation4XXErrors and
Invocation5XXErrors 1 when the model answered 4xx or 5xx, else 0 (Sum: errors, Average: rate);
ModelLatency (µs the instance took); OverheadLatency (µs of the request's time that was not the
model's); InvocationsPerInstance 1/(instances of its variant).

Requests no instance answered: one that reached an instance which then died with it or timed
out was delivered, so it counts as SageMaker counts a container that gave no answer: an
Invocation and an Invocation5XXError of that instance, with no latency (there was no answer to
time). One that reached no instance (none ready, the endpoint not serving) never reached a
variant, as SageMaker's front end refuses it before one: it is not counted."""

from __future__ import annotations

import bisect
import collections
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from dockyard.engine.metric_histogram import bin_of
from dockyard.storage.metadata import EndpointMetricBucket, MetadataStore

log = logging.getLogger(__name__)

INVOCATIONS = "Invocations"
ERRORS_4XX = "Invocation4XXErrors"
ERRORS_5XX = "Invocation5XXErrors"
MODEL_LATENCY = "ModelLatency"
OVERHEAD_LATENCY = "OverheadLatency"
PER_INSTANCE = "InvocationsPerInstance"
METRIC_NAMES = (INVOCATIONS, ERRORS_4XX, ERRORS_5XX, MODEL_LATENCY, OVERHEAD_LATENCY, PER_INSTANCE)

FLUSH_SECONDS = 5.0
RECENT = 200  # invocations kept per endpoint for the console
_RETENTION_SWEEP_SECONDS = 600.0
# Prometheus latency histogram bounds, in seconds (its defaults, widened to 1 ms and 60 s: the
# invocation timeout), and in microseconds for the hot path.
LATENCY_BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0,
                  2.5, 5.0, 7.5, 10.0, 30.0, 60.0)  # fmt: skip
_BOUNDS_US = tuple(b * 1e6 for b in LATENCY_BOUNDS)

BucketKey = tuple[str, str, str, int]  # endpoint, variant, instance, second


@dataclass(frozen=True)
class RecentInvocation:
    time: float
    variant: str
    instance: str
    status: int  # the model's HTTP status; 0: no answer (crashed, timed out)
    model_microseconds: int | None


class _Second:
    """One second of one instance: its invocations' counts and raw samples, summarised (with
    builtins, in C) only when its buckets are made: counting an invocation is a few appends."""

    __slots__ = ("errors_4xx", "errors_5xx", "model", "overhead", "shares")

    def __init__(self) -> None:
        self.errors_4xx = 0
        self.errors_5xx = 0
        self.shares: list[float] = []  # one per invocation: 1 / instances of its variant
        self.model: list[int] = []  # µs, one per answered invocation
        self.overhead: list[int] = []

    def buckets(self, key: BucketKey) -> Iterator[EndpointMetricBucket]:
        endpoint, variant, instance, start = key
        n = len(self.shares)
        if n == 0:
            return
        counters = ((INVOCATIONS, n), (ERRORS_4XX, self.errors_4xx), (ERRORS_5XX, self.errors_5xx))
        for name, total in counters:
            low = 1.0 if name == INVOCATIONS or total == n else 0.0
            high = 1.0 if total else 0.0
            yield EndpointMetricBucket(
                endpoint, variant, instance, name, start, n, float(total), low, high, {}
            )
        yield EndpointMetricBucket(
            endpoint, variant, instance, PER_INSTANCE, start, n, sum(self.shares),
            min(self.shares), max(self.shares), {},
        )  # fmt: skip
        for name, values in ((MODEL_LATENCY, self.model), (OVERHEAD_LATENCY, self.overhead)):
            if values:
                yield EndpointMetricBucket(
                    endpoint, variant, instance, name, start, len(values), float(sum(values)),
                    float(min(values)), float(max(values)), dict(Counter(map(bin_of, values))),
                )  # fmt: skip

    def combined(self, other: _Second) -> _Second:
        """Both seconds' samples in a new one (neither changes): a copy for a reader, or a
        failed flush's second with the pending one after it."""
        both = _Second()
        both.errors_4xx = self.errors_4xx + other.errors_4xx
        both.errors_5xx = self.errors_5xx + other.errors_5xx
        both.shares = self.shares + other.shares
        both.model = self.model + other.model
        both.overhead = self.overhead + other.overhead
        return both


@dataclass
class LatencyHistogram:
    """A Prometheus histogram's running state: samples per bound (not cumulative), sum."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS) + 1))
    total_seconds: float = 0.0

    def add(self, microseconds: int) -> None:
        self.counts[bisect.bisect_left(_BOUNDS_US, microseconds)] += 1
        self.total_seconds += microseconds / 1e6


@dataclass
class RouterTotals:
    """What the router has done since the server started (Prometheus' counters): invocations
    by (endpoint, variant, instance, status class), latencies by (endpoint, variant)."""

    invocations: dict[tuple[str, str, str, str], int] = field(default_factory=dict)
    model_latency: dict[tuple[str, str], LatencyHistogram] = field(default_factory=dict)
    overhead_latency: dict[tuple[str, str], LatencyHistogram] = field(default_factory=dict)


def status_class(status: int) -> str:
    """`2xx`, `4xx`, ...; `none` for a request the instance gave no answer to."""
    return f"{status // 100}xx" if status else "none"


class EndpointMetrics:
    """The engine's recorder. `record` runs on the event loop for every invocation: a few
    appends under one short lock (no await, no I/O), shared with the flusher's swap and the
    readers' copies."""

    def __init__(
        self,
        metadata: MetadataStore,
        *,
        enabled: bool = True,
        retention_days: float = 15.0,
        flush_seconds: float = FLUSH_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.metadata = metadata
        self.enabled = enabled
        self.retention_seconds = retention_days * 86400
        self.flush_seconds = flush_seconds
        self.clock = clock
        # Held by `record` for a few appends (never across an await), by the flusher's swap and
        # by readers' copies: pending, totals and recent.
        self._lock = threading.Lock()
        self._pending: dict[BucketKey, _Second] = {}
        self._totals = RouterTotals()
        # Tuples, made into RecentInvocation only when read: the hot path makes no dataclass.
        self._recent: dict[str, collections.deque[tuple[float, str, str, int, int | None]]] = {}
        self._by_status: dict[tuple[str, str, str, int], int] = {}  # classes made when read
        # Held while a flush writes and while a reader reads store and memory: a bucket is in
        # memory or in the store, never in neither nor (to a reader) in both.
        self._flush_lock = threading.Lock()
        self._flushing: dict[BucketKey, _Second] = {}
        self._swept = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the hot path ---------------------------------------------------------------------

    def record(
        self,
        endpoint: str,
        variant: str,
        instance: str,
        status: int,
        model_microseconds: int | None,
        overhead_microseconds: int | None,
        variant_instances: int,
    ) -> None:
        """One invocation `instance` had; `status` 0 and no latencies when it gave no answer.
        Counted here, on the event loop, with appends and additions only (a second's samples
        are summarised when its buckets are made, by the flusher): about 1% of the router's
        CPU per request (benchmarks/RESULTS.md, router metrics)."""
        if not self.enabled:
            return
        now = self.clock()
        key = (endpoint, variant, instance, int(now))
        counted = (endpoint, variant, instance, status)
        with self._lock:
            second = self._pending.get(key)
            if second is None:
                second = self._pending[key] = _Second()
            second.shares.append(1.0 / variant_instances if variant_instances > 1 else 1.0)
            if 400 <= status < 500:
                second.errors_4xx += 1
            elif status >= 500 or status == 0:
                second.errors_5xx += 1
            self._by_status[counted] = self._by_status.get(counted, 0) + 1
            if model_microseconds is not None:
                second.model.append(model_microseconds)
                _histogram(self._totals.model_latency, endpoint, variant).add(model_microseconds)
            if overhead_microseconds is not None:
                second.overhead.append(overhead_microseconds)
                _histogram(self._totals.overhead_latency, endpoint, variant).add(
                    overhead_microseconds
                )
            recent = self._recent.get(endpoint)
            if recent is None:
                recent = self._recent[endpoint] = collections.deque(maxlen=RECENT)
            recent.append((now, variant, instance, status, model_microseconds))

    # -- readers --------------------------------------------------------------------------

    def buckets(
        self,
        endpoint: str,
        metric_name: str,
        variant: str | None = None,
        instance: str | None = None,
        start: int | None = None,
        end: int | None = None,
    ) -> list[EndpointMetricBucket]:
        """Stored and not yet flushed buckets, merged, ordered by start (then variant,
        instance); `start` inclusive, `end` exclusive."""
        with self._flush_lock:
            stored = self.metadata.endpoint_metric_buckets(
                endpoint, metric_name, variant, instance, start, end
            )
            unflushed = self._unflushed()
        merged = {b.key: b for b in stored}
        for key, second in unflushed:
            e, v, i, s = key
            if (
                e != endpoint
                or (variant is not None and v != variant)
                or (instance is not None and i != instance)
                or (start is not None and s < start)
                or (end is not None and s >= end)
            ):
                continue
            for bucket in second.buckets(key):
                if bucket.metric_name == metric_name:
                    had = merged.get(bucket.key)
                    merged[bucket.key] = bucket if had is None else had.merged(bucket)
        return sorted(merged.values(), key=lambda b: (b.start, b.variant, b.instance))

    def keys(self, endpoint: str | None = None) -> list[tuple[str, str, str, str]]:
        """Distinct (endpoint, variant, instance, metric name) stored or not yet flushed."""
        with self._flush_lock:
            found = set(self.metadata.endpoint_metric_keys(endpoint))
            unflushed = self._unflushed()
        for key, second in unflushed:
            if endpoint is None or key[0] == endpoint:
                found.update(b.key[:4] for b in second.buckets(key))
        return sorted(found)

    def recent(self, endpoint: str) -> list[RecentInvocation]:
        """The endpoint's last invocations (at most RECENT), newest first."""
        with self._lock:
            kept = list(self._recent.get(endpoint, ()))
        return [RecentInvocation(*i) for i in reversed(kept)]

    def totals(self) -> RouterTotals:
        """A copy of the running totals (Prometheus reads them at scrape time)."""
        with self._lock:
            by_status = list(self._by_status.items())
            totals = RouterTotals(
                {},
                {k: LatencyHistogram(list(h.counts), h.total_seconds)
                 for k, h in self._totals.model_latency.items()},
                {k: LatencyHistogram(list(h.counts), h.total_seconds)
                 for k, h in self._totals.overhead_latency.items()},
            )  # fmt: skip
        for (endpoint, variant, instance, status), n in by_status:
            key = (endpoint, variant, instance, status_class(status))
            totals.invocations[key] = totals.invocations.get(key, 0) + n
        return totals

    def _unflushed(self) -> list[tuple[BucketKey, _Second]]:
        """What memory holds (call with the flush lock): the flush under way and the pending.
        The pending seconds are copied: the flusher may fold more into them meanwhile."""
        with self._lock:
            pending = [(k, s.combined(_Second())) for k, s in self._pending.items()]
        return [*self._flushing.items(), *pending]

    # -- the flusher ----------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="endpoint-metrics", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
                self._sweep()
            except Exception:
                # The database may be away for a while: the buckets wait in memory for the next
                # flush, and the router goes on.
                log.exception("endpoint metrics: a flush failed; trying again shortly")

    def flush(self) -> None:
        """Write what the router recorded so far to the metadata store."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
            for key, second in pending.items():
                had = self._flushing.get(key)
                self._flushing[key] = second if had is None else had.combined(second)
            if not self._flushing:
                return
            buckets = [b for k, s in self._flushing.items() for b in s.buckets(k)]
            self.metadata.add_endpoint_metric_buckets(buckets)
            self._flushing = {}

    def _sweep(self) -> None:
        now = self.clock()
        if now - self._swept < _RETENTION_SWEEP_SECONDS:
            return
        self._swept = now
        dropped = self.metadata.delete_endpoint_metrics_before(int(now - self.retention_seconds))
        if dropped:
            log.info("endpoint metrics: dropped %d buckets past retention", dropped)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            self.flush()
        except Exception:
            log.exception("endpoint metrics: the last flush failed; its buckets are lost")


def _histogram(
    table: dict[tuple[str, str], LatencyHistogram], endpoint: str, variant: str
) -> LatencyHistogram:
    found = table.get((endpoint, variant))
    if found is None:
        found = table[(endpoint, variant)] = LatencyHistogram()
    return found
