"""An endpoint's instances through Dockyard's own API on a real server: two instances listed,
serving and healthy, each having served what the echo model says it answered; a killed
instance leaves the list for a healthy replacement; an unknown endpoint is refused."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dockyard.client import Client
from dockyard.settings import Settings
from tests.api.test_endpoints_api import deploy, make_echo_image
from tests.conftest import RunningServer

INVOCATIONS = 40


def client_of(server: RunningServer) -> Client:
    return Client(Settings(home=server.settings.home, endpoint_url=server.url))


def instances(server: RunningServer, name: str) -> list[dict[str, Any]]:
    answer = client_of(server).dockyard("DescribeEndpointInstances", {"EndpointName": name})
    return list(answer["Instances"])


@pytest.mark.slow
def test_both_instances_are_listed_healthy_with_what_they_served(
    server: RunningServer, tmp_path: Path
) -> None:
    began = time.time()
    described = deploy(server, make_echo_image(tmp_path), "pair", count=2)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    runtime = server.client("sagemaker-runtime")
    answered: Counter[str] = Counter()
    for i in range(INVOCATIONS):
        response = runtime.invoke_endpoint(EndpointName="pair", Body=f"{i}".encode())
        # The echo model answers with its hostname, which is the instance's name.
        answered[json.loads(response["Body"].read())["host"]] += 1

    listed = instances(server, "pair")
    assert sorted(i["InstanceName"] for i in listed) == ["AllTraffic-1", "AllTraffic-2"]
    for instance in listed:
        assert instance["VariantName"] == "AllTraffic"
        assert instance["State"] == "serving"
        assert instance["Healthy"] is True
        assert instance["InFlight"] == 0
        assert began <= instance["StartedAt"] <= time.time()
        assert instance["Node"] == "127.0.0.1"  # the local backend's one node
    served = {i["InstanceName"]: i["Served"] for i in listed}
    assert served == dict(answered)
    assert sum(served.values()) == INVOCATIONS


@pytest.mark.slow
def test_a_killed_instance_is_replaced_by_a_healthy_one(
    server: RunningServer, tmp_path: Path
) -> None:
    described = deploy(server, make_echo_image(tmp_path), "mended", count=2)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    # The instance's container is killed as a crash would end it, behind the engine's back.
    routed = _routed_instances(server, "mended")
    killed = next(i for i in routed if i.name == "AllTraffic-1")
    killed.host.signal(signal.SIGKILL)
    seen: list[tuple[str, str]] = []
    deadline = time.monotonic() + 60
    while True:
        listed = instances(server, "mended")
        seen += [(i["InstanceName"], i["State"]) for i in listed]
        names = {i["InstanceName"]: i for i in listed}
        if "AllTraffic-1" not in names and names.get("AllTraffic-3", {}).get("Healthy"):
            break
        assert time.monotonic() < deadline, f"not replaced in 60 s; seen {seen[-4:]}"
        time.sleep(0.05)
    assert sorted(names) == ["AllTraffic-2", "AllTraffic-3"]
    assert all(i["Healthy"] and i["State"] == "serving" for i in listed)


def _routed_instances(server: RunningServer, name: str) -> list[Any]:
    """The endpoint's instances the router sends requests to (the test needs a process to
    kill; the API gives none, on purpose)."""
    route = server.engine.endpoints.router.route(name)
    assert route is not None
    return [i for variant in route.variants for i in variant.instances]


def test_instances_of_an_unknown_endpoint_or_bad_name(server: RunningServer) -> None:
    client = client_of(server)
    with pytest.raises(ClientError) as missing:
        client.dockyard("DescribeEndpointInstances", {"EndpointName": "nowhere"})
    assert missing.value.response["Error"]["Code"] == "ValidationException"
    assert 'Could not find endpoint "' in missing.value.response["Error"]["Message"]
    assert "nowhere" in missing.value.response["Error"]["Message"]
    for bad in ({}, {"EndpointName": "no_underscores"}, {"EndpointName": 5}):
        with pytest.raises(ClientError, match="ValidationException"):
            client.dockyard("DescribeEndpointInstances", bad)
