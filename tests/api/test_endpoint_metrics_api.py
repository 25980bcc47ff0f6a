"""Endpoint metrics recorded by a real server: 100 invocations through boto3 across two variants
(one of whose model refuses some requests with 400), counted per variant and instance right
away and after the flush, and an endpoint's recent invocations through Dockyard's own API."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from dockyard.client import Client
from dockyard.engine.endpoint_metrics import (
    ERRORS_4XX,
    ERRORS_5XX,
    INVOCATIONS,
    MODEL_LATENCY,
    OVERHEAD_LATENCY,
    PER_INSTANCE,
)
from dockyard.settings import Settings
from tests.api.test_endpoints_api import make_echo_image, wait_for_endpoint
from tests.conftest import RunningServer


def deploy_two_variants(server: RunningServer, tmp_path: Path, name: str) -> None:
    """Blue: 2 instances; Green: 1 instance, whose model answers 400 to the body `fail`."""
    sagemaker = server.client("sagemaker")
    sagemaker.create_model(
        ModelName=f"{name}-model", PrimaryContainer={"Image": str(make_echo_image(tmp_path))}
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "Blue", "ModelName": f"{name}-model", "InitialInstanceCount": 2,
             "InstanceType": "ml.m5.large"},
            {"VariantName": "Green", "ModelName": f"{name}-model", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large"},
        ],
    )  # fmt: skip
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    described = wait_for_endpoint(sagemaker, name)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")


def invoke(server: RunningServer, name: str, plan: list[tuple[str, bytes]]) -> Counter[str]:
    """Send each (variant, body); the instances that answered, as the echo model names them."""
    runtime = server.client("sagemaker-runtime")
    answered: Counter[str] = Counter()
    for variant, body in plan:
        try:
            response = runtime.invoke_endpoint(EndpointName=name, Body=body, TargetVariant=variant)
        except ClientError as refused:
            assert refused.response["OriginalStatusCode"] == 400
            continue
        answered[json.loads(response["Body"].read())["host"]] += 1
    return answered


@pytest.mark.slow
def test_100_invocations_are_counted_per_variant_and_instance(
    server: RunningServer, tmp_path: Path
) -> None:
    deploy_two_variants(server, tmp_path, "counted")
    plan = [("Blue", b"x")] * 60 + [("Green", b"y")] * 30 + [("Green", b"fail")] * 10
    began = time.time()
    answered = invoke(server, "counted", plan)
    assert sum(answered.values()) == 90 and answered["Green-1"] == 30
    assert answered["Blue-1"] > 0 and answered["Blue-2"] > 0

    metrics = server.engine.endpoint_metrics

    def total(name: str, **where: str) -> float:
        return sum(b.total for b in metrics.buckets("counted", name, **where))

    def samples(name: str, **where: str) -> int:
        return sum(b.count for b in metrics.buckets("counted", name, **where))

    def check() -> None:
        assert total(INVOCATIONS) == samples(INVOCATIONS) == 100
        assert total(INVOCATIONS, variant="Blue") == 60
        assert total(INVOCATIONS, variant="Green") == 40
        for instance in ("Blue-1", "Blue-2"):
            assert total(INVOCATIONS, instance=instance) == answered[instance]
        assert total(INVOCATIONS, variant="Green", instance="Green-1") == 40
        assert total(ERRORS_4XX) == total(ERRORS_4XX, variant="Green") == 10
        assert samples(ERRORS_4XX) == 100 and total(ERRORS_5XX) == 0
        assert total(PER_INSTANCE, variant="Blue") == pytest.approx(30)  # 60 requests / 2
        assert total(PER_INSTANCE, variant="Green") == pytest.approx(40)
        assert samples(MODEL_LATENCY) == samples(OVERHEAD_LATENCY) == 100
        for bucket in metrics.buckets("counted", MODEL_LATENCY):
            assert 0 < bucket.minimum <= bucket.maximum < 10e6  # µs: answers within 10 s
            assert sum(bucket.histogram.values()) == bucket.count
        seconds = [b.start for b in metrics.buckets("counted", INVOCATIONS)]
        assert int(began) <= min(seconds) <= max(seconds) <= time.time()
        assert {k[1:] for k in metrics.keys("counted")} >= {
            ("Blue", "Blue-1", INVOCATIONS),
            ("Green", "Green-1", ERRORS_4XX),
        }

    check()  # right away: the buckets not yet flushed count too
    metrics.flush()
    stored = server.engine.metadata.endpoint_metric_buckets("counted", INVOCATIONS)
    assert sum(b.total for b in stored) == 100
    check()  # and after the flush, nothing counted twice

    recent = Client(Settings(home=server.settings.home, endpoint_url=server.url)).dockyard(
        "ListRecentInvocations", {"EndpointName": "counted"}
    )["Invocations"]
    assert len(recent) == 100
    times = [r["Time"] for r in recent]
    assert times == sorted(times, reverse=True)  # newest first
    assert [r["StatusCode"] for r in recent[:10]] == [400] * 10  # the last ten were refused
    assert Counter(r["InstanceName"] for r in recent if r["VariantName"] == "Blue") == Counter(
        {k: v for k, v in answered.items() if k.startswith("Blue")}
    )
    assert all(r["ModelLatencyMicroseconds"] > 0 for r in recent)


def test_recent_invocations_of_an_unknown_endpoint_or_bad_name(server: RunningServer) -> None:
    client = Client(Settings(home=server.settings.home, endpoint_url=server.url))
    with pytest.raises(ClientError) as missing:
        client.dockyard("ListRecentInvocations", {"EndpointName": "nowhere"})
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    assert "nowhere" in missing.value.response["Error"]["Message"]
    for bad in ({}, {"EndpointName": "no_underscores"}, {"EndpointName": 5}):
        with pytest.raises(ClientError, match="ValidationException"):
            client.dockyard("ListRecentInvocations", bad)
