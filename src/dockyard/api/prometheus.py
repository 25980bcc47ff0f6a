"""GET /metrics: the server's operator series in Prometheus' text format, read from the engine
at scrape time (the server, the job queue, endpoint instances, the router's totals), so nothing
on the invocation path updates a Prometheus object. Loopback scrapers are let in; with
DOCKYARD_METRICS_TOKEN set, every scraper must send it as a bearer token."""

from __future__ import annotations

import hmac
import ipaddress
import time
from collections import Counter
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from dockyard import __version__
from dockyard.api.validation import service_model
from dockyard.engine.core import Engine
from dockyard.engine.endpoint_metrics import LATENCY_BOUNDS, LatencyHistogram
from dockyard.storage.records import TRAINING_JOBS, TRANSFORM_JOBS

INSTANCE_STATES = ("starting", "healthy", "serving", "exited")


def _statuses(shape: str) -> list[str]:
    """Every status SageMaker's model names: a status with no job is a 0, not a missing series."""
    return list(service_model("sagemaker").shape_for(shape).metadata["enum"])


class EngineCollector(Collector):
    """The engine's state as metric families, built anew at every scrape."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.started = time.time()
        self.training_statuses = _statuses("TrainingJobStatus")
        self.transform_statuses = _statuses("TransformJobStatus")

    def collect(self) -> Iterator[Metric]:
        yield from self._server()
        yield from self._queue()
        yield from self._instances()
        yield from self._router()

    def _server(self) -> Iterator[Metric]:
        info = InfoMetricFamily("dockyard_server", "The dockyard server")
        info.add_metric([], {"version": __version__})
        yield info
        yield GaugeMetricFamily(
            "dockyard_server_uptime_seconds",
            "Seconds since the server started",
            value=time.time() - self.started,
        )

    def _queue(self) -> Iterator[Metric]:
        metadata = self.engine.metadata
        for counts, statuses, name in (
            (metadata.status_counts(TRAINING_JOBS), self.training_statuses, "training"),
            (metadata.status_counts(TRANSFORM_JOBS), self.transform_statuses, "transform"),
        ):
            family = GaugeMetricFamily(
                f"dockyard_{name}_jobs", f"{name.capitalize()} jobs by status", labels=["status"]
            )
            for status in sorted({*statuses, *counts}):
                family.add_metric([status], counts.get(status, 0))
            yield family
        yield GaugeMetricFamily(
            "dockyard_capacity_waiting",
            "Jobs and endpoint instances waiting for the machine's CPUs, memory or GPUs",
            value=self.engine.ctx.capacity.waiting,
        )

    def _instances(self) -> Iterator[Metric]:
        states = self.engine.endpoints.instance_states()
        by_state = GaugeMetricFamily(
            "dockyard_endpoint_instances",
            "Endpoint instances by state: starting, healthy (not yet in rotation), serving, "
            "exited (being replaced)",
            labels=["endpoint", "variant", "state"],
        )
        counted = Counter((s.endpoint, s.variant, s.state) for s in states)
        for endpoint, variant in sorted({(s.endpoint, s.variant) for s in states}):
            for state in INSTANCE_STATES:
                by_state.add_metric([endpoint, variant, state], counted[endpoint, variant, state])
        yield by_state
        in_flight = GaugeMetricFamily(
            "dockyard_endpoint_requests_in_flight",
            "Requests the router has sent an instance and not had answered",
            labels=["endpoint", "variant", "instance"],
        )
        for s in sorted(states, key=lambda s: (s.endpoint, s.variant, s.instance)):
            in_flight.add_metric([s.endpoint, s.variant, s.instance], s.in_flight)
        yield in_flight

    def _router(self) -> Iterator[Metric]:
        totals = self.engine.endpoint_metrics.totals()
        invocations = CounterMetricFamily(
            "dockyard_router_invocations",
            "Invocations an instance had, by the class of the model's status (none: no answer)",
            labels=["endpoint", "variant", "instance", "status_class"],
        )
        for labels, n in sorted(totals.invocations.items()):
            invocations.add_metric(list(labels), n)
        yield invocations
        for name, text, table in (
            ("model", "ModelLatency: the instance's part of a request", totals.model_latency),
            ("overhead", "OverheadLatency: the server's own part", totals.overhead_latency),
        ):
            family = HistogramMetricFamily(
                f"dockyard_router_{name}_latency_seconds", text, labels=["endpoint", "variant"]
            )
            for (endpoint, variant), histogram in sorted(table.items()):
                family.add_metric(
                    [endpoint, variant], _cumulative(histogram), histogram.total_seconds
                )
            yield family


def _cumulative(histogram: LatencyHistogram) -> list[tuple[str, float]]:
    buckets, seen = [], 0
    for bound, n in zip((*LATENCY_BOUNDS, float("inf")), histogram.counts, strict=True):
        seen += n
        buckets.append(("+Inf" if bound == float("inf") else repr(bound), float(seen)))
    return buckets


def _loopback(request: Request) -> bool:
    if request.client is None:
        return False
    try:
        return ipaddress.ip_address(request.client.host).is_loopback
    except ValueError:
        return False  # not an address (a test client's name): not loopback


class MetricsEndpoint:
    """The GET /metrics handler, with its own registry (several servers in one process, as in
    tests, each answer for their own engine)."""

    def __init__(self, engine: Engine) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(EngineCollector(engine))
        ProcessCollector(registry=self.registry)  # the server process: CPU, memory, files
        token = engine.settings.metrics_token
        self.token = token.get_secret_value().encode() if token is not None else None

    def _refusal(self, request: Request) -> Response | None:
        if self.token is None:
            if _loopback(request):
                return None
            return PlainTextResponse(
                "GET /metrics answers only loopback clients: set DOCKYARD_METRICS_TOKEN on the "
                "server and have Prometheus send it (authorization: {credentials: TOKEN})\n",
                status_code=403,
            )
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.token):
            return None
        return PlainTextResponse(
            "GET /metrics needs Authorization: Bearer <the server's DOCKYARD_METRICS_TOKEN>\n",
            status_code=401,
            headers={"WWW-Authenticate": 'Bearer realm="dockyard metrics"'},
        )

    async def handle(self, request: Request) -> Response:
        refused = self._refusal(request)
        if refused is not None:
            return refused
        # The queue's counts are a database read: off the event loop.
        body = await run_in_threadpool(generate_latest, self.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)
