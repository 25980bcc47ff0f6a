"""GET /metrics of a real server, scraped with curl and read with prometheus_client's own
parser: the router's and the queue's series after N invocations and M jobs; who may scrape
(loopback, a bearer token; a remote client without a token is told what to set)."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from dockyard import __version__
from dockyard.api.app import create_app
from dockyard.backends.capacity import Demand
from dockyard.settings import Settings
from tests.api.test_endpoint_metrics_api import deploy_two_variants, invoke
from tests.conftest import RunningServer, free_port, make_image, training_request, wait_for_job


def scrape(url: str, *headers: str) -> tuple[int, str]:
    """curl's status and body, as a Prometheus server's scrape would get them."""
    argv = ["curl", "-sS", "-o", "-", "-w", "\n%{http_code}", f"{url}/metrics"]
    for header in headers:
        argv += ["-H", header]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True)
    body, _, status = done.stdout.rpartition("\n")
    return int(status), body


def samples(text: str) -> dict[str, list[Sample]]:
    found: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def value(found: dict[str, list[Sample]], name: str, **labels: str) -> float:
    matching = [s.value for s in found[name] if labels.items() <= s.labels.items()]
    return sum(matching)


@pytest.mark.slow
def test_router_and_queue_series_after_invocations_and_jobs(
    server: RunningServer, tmp_path: Path
) -> None:
    sagemaker = server.client("sagemaker")
    jobs = {"ok-1": "print('done')", "ok-2": "print('done')", "broken": "raise SystemExit(3)"}
    for name, program in jobs.items():
        sagemaker.create_training_job(
            **training_request(name, make_image(tmp_path / name, program))
        )
    for name in jobs:
        wait_for_job(sagemaker, name)
    deploy_two_variants(server, tmp_path, "scraped")
    plan = [("Blue", b"x")] * 40 + [("Green", b"y")] * 15 + [("Green", b"fail")] * 5
    answered = invoke(server, "scraped", plan)

    status, text = scrape(server.url)
    assert status == 200, text
    found = samples(text)
    # The router: 60 invocations, by instance and status class.
    counted = "dockyard_router_invocations_total"
    assert value(found, counted, endpoint="scraped") == 60
    for instance in ("Blue-1", "Blue-2"):
        assert value(found, counted, instance=instance, status_class="2xx") == answered[instance]
    assert value(found, counted, variant="Green", status_class="2xx") == 15
    assert value(found, counted, variant="Green", status_class="4xx") == 5
    for kind in ("model", "overhead"):
        histogram = f"dockyard_router_{kind}_latency_seconds"
        assert value(found, f"{histogram}_count", endpoint="scraped") == 60
        assert value(found, f"{histogram}_bucket", variant="Blue", le="+Inf") == 40
        assert 0 < value(found, f"{histogram}_sum", variant="Blue") < 40 * 10
        buckets = [s for s in found[f"{histogram}_bucket"] if s.labels["variant"] == "Green"]
        counts = [s.value for s in buckets]
        assert counts == sorted(counts) and counts[-1] == 20  # cumulative
    # The queue: M jobs by status, every status SageMaker names present.
    assert value(found, "dockyard_training_jobs", status="Completed") == 2
    assert value(found, "dockyard_training_jobs", status="Failed") == 1
    assert value(found, "dockyard_training_jobs", status="InProgress") == 0
    assert {s.labels["status"] for s in found["dockyard_transform_jobs"]} >= {
        "InProgress", "Completed", "Failed", "Stopping", "Stopped"
    }  # fmt: skip
    assert value(found, "dockyard_transform_jobs") == 0
    assert value(found, "dockyard_capacity_waiting") == 0
    # Instances and the server.
    instances = "dockyard_endpoint_instances"
    assert value(found, instances, endpoint="scraped", variant="Blue", state="serving") == 2
    assert value(found, instances, endpoint="scraped", variant="Green", state="serving") == 1
    assert value(found, instances, state="starting") == 0
    in_flight = found["dockyard_endpoint_requests_in_flight"]
    assert sorted(s.labels["instance"] for s in in_flight) == ["Blue-1", "Blue-2", "Green-1"]
    assert all(s.value == 0 for s in in_flight)  # every request answered
    assert found["dockyard_server_info"][0].labels == {"version": __version__}
    assert value(found, "dockyard_server_uptime_seconds") > 0
    assert value(found, "process_resident_memory_bytes") > 0


def test_scrapes_need_no_signature_and_show_jobs_waiting_for_capacity(
    server: RunningServer,
) -> None:
    status, text = scrape(server.url)
    assert status == 200 and value(samples(text), "dockyard_capacity_waiting") == 0
    capacity = server.engine.ctx.capacity
    whole = Demand(capacity.cpus, capacity.memory_gib, 0)
    assert capacity.acquire(whole)
    second = threading.Thread(target=capacity.acquire, args=(whole,))
    second.start()
    try:
        deadline = time.monotonic() + 10
        while capacity.waiting == 0:
            assert time.monotonic() < deadline, "the second demand never waited"
            time.sleep(0.01)
        assert value(samples(scrape(server.url)[1]), "dockyard_capacity_waiting") == 1
    finally:
        capacity.release(whole)
        second.join(10)
    capacity.release(whole)  # the second one's hold
    assert value(samples(scrape(server.url)[1]), "dockyard_capacity_waiting") == 0
    # Everything else still needs a signature.
    refused = httpx.post(server.url + "/", headers={"X-Amz-Target": "SageMaker.ListModels"})
    assert refused.status_code == 403, refused.text


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[RunningServer]:
    settings = Settings(
        home=tmp_path / "token-home",
        port=free_port(),
        stop_grace_seconds=2.0,
        metrics_token="s3cret-token",
    )
    running = RunningServer(settings)
    try:
        yield running
    finally:
        running.close()


def test_a_token_is_asked_of_every_scraper_when_set(token_server: RunningServer) -> None:
    status, text = scrape(token_server.url)
    assert status == 401 and "DOCKYARD_METRICS_TOKEN" in text
    assert scrape(token_server.url, "Authorization: Bearer wrong")[0] == 401
    assert scrape(token_server.url, "Authorization: Basic czNjcmV0LXRva2Vu")[0] == 401
    status, text = scrape(token_server.url, "Authorization: Bearer s3cret-token")
    assert status == 200 and "dockyard_server_info" in text


def _remote_get(app: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    """GET /metrics through the app as if from another machine (the ASGI scope's client; no
    packet leaves this process)."""

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://dockyard") as client:
            return await client.get("/metrics", headers=headers or {})

    return asyncio.run(get())


def test_a_remote_scraper_needs_a_token(server: RunningServer, token_server: RunningServer) -> None:
    plain = create_app(server.engine, close_engine=False)
    refused = _remote_get(plain)
    assert refused.status_code == 403
    assert "set DOCKYARD_METRICS_TOKEN" in refused.text
    with_token = create_app(token_server.engine, close_engine=False)
    assert _remote_get(with_token).status_code == 401
    answered = _remote_get(with_token, {"Authorization": "Bearer s3cret-token"})
    assert answered.status_code == 200 and "dockyard_router_invocations" in answered.text
