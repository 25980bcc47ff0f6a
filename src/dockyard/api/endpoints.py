"""SageMaker endpoint operations on the wire."""

from __future__ import annotations

from typing import Any

from dockyard.api.protocol import Operation
from dockyard.contract.endpoints import (
    CreateEndpointRequest,
    EndpointNameRequest,
    ListEndpointsRequest,
    UpdateEndpointRequest,
    UpdateEndpointWeightsAndCapacitiesRequest,
)
from dockyard.engine.core import Engine


def operations(engine: Engine) -> dict[str, Operation]:
    endpoints = engine.endpoints

    def delete(body: dict[str, Any]) -> dict[str, Any]:
        endpoints.delete(EndpointNameRequest.from_wire(body).endpoint_name)
        return {}

    return {
        "CreateEndpoint": lambda body: {
            "EndpointArn": endpoints.create(CreateEndpointRequest.from_wire(body))
        },
        "UpdateEndpoint": lambda body: {
            "EndpointArn": endpoints.update(UpdateEndpointRequest.from_wire(body))
        },
        "DescribeEndpoint": lambda body: endpoints.describe(
            EndpointNameRequest.from_wire(body).endpoint_name
        ),
        "ListEndpoints": lambda body: endpoints.list(ListEndpointsRequest.from_wire(body)),
        "DeleteEndpoint": delete,
        "UpdateEndpointWeightsAndCapacities": lambda body: {
            "EndpointArn": endpoints.update_weights_and_capacities(
                UpdateEndpointWeightsAndCapacitiesRequest.from_wire(body)
            )
        },
    }
