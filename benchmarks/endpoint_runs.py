"""Endpoints on one in-process engine for the benchmarks: a model and config made once, then
endpoints of it created and timed from CreateEndpoint to InService, and deleted."""

from __future__ import annotations

import time
from typing import Any

from dockyard.contract.endpoints import CreateEndpointRequest
from dockyard.contract.errors import NotFoundError
from dockyard.contract.models import CreateEndpointConfigRequest, CreateModelRequest
from dockyard.engine.core import Engine

POLL_SECONDS = 0.005
DELETE_SECONDS = 60.0
ROLE = "arn:aws:iam::111111111111:role/bench"


class Endpoints:
    """One engine's endpoints under unique names: each timed from CreateEndpoint to InService
    (describe every 5 ms); `start` deletes it again and waits until it is gone, untimed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.count = 0

    def model(self, name: str, container: dict[str, Any], instance_type: str = "local") -> str:
        """A model of `container` (PrimaryContainer's fields) and a config of one instance of
        `instance_type`, both named `name`."""
        self.engine.models.create(
            CreateModelRequest.from_wire(
                {"ModelName": name, "PrimaryContainer": container, "ExecutionRoleArn": ROLE}
            )
        )
        self.engine.endpoint_configs.create(
            CreateEndpointConfigRequest.from_wire(
                {
                    "EndpointConfigName": name,
                    "ProductionVariants": [
                        {
                            "VariantName": "AllTraffic",
                            "ModelName": name,
                            "InitialInstanceCount": 1,
                            "InstanceType": instance_type,
                        }
                    ],
                }
            )
        )
        return name

    def status(self, name: str) -> str | None:
        try:
            return self.engine.endpoints.describe(name).record.status
        except NotFoundError:
            return None

    def create(self, config: str, name: str | None = None) -> tuple[str, float]:
        """A new endpoint of `config` (named `name`, else after the config), InService: its
        name and the ms it took."""
        if name is None:
            self.count += 1
            name = f"{config}-{self.count}"
        request = CreateEndpointRequest.from_wire(
            {"EndpointName": name, "EndpointConfigName": config}
        )
        start = time.perf_counter()
        self.engine.endpoints.create(request)
        while (status := self.status(name)) == "Creating":
            time.sleep(POLL_SECONDS)
        elapsed = (time.perf_counter() - start) * 1000
        if status != "InService":
            reason = self.engine.endpoints.describe(name).record.state
            raise RuntimeError(f"endpoint {name} ended {status}: {reason}")
        return name, elapsed

    def delete(self, name: str) -> None:
        """Delete `name` and wait until it is gone (its instance stopped and released)."""
        self.engine.endpoints.delete(name)
        deadline = time.monotonic() + DELETE_SECONDS
        while self.status(name) is not None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"endpoint {name} was not deleted within {DELETE_SECONDS:g} s")
            time.sleep(0.02)

    def start(self, config: str) -> float:
        """ms from CreateEndpoint to InService of a new endpoint of `config`, deleted after."""
        name, elapsed = self.create(config)
        self.delete(name)
        return elapsed
