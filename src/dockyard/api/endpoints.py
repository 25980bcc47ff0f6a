"""SageMaker endpoint operations on the wire."""

from __future__ import annotations

from typing import Any

from dockyard.api.protocol import Operation
from dockyard.contract.endpoints import (
    CreateEndpointRequest,
    DescribeEndpointResponse,
    EndpointNameRequest,
    EndpointStatus,
    EndpointSummary,
    ListEndpointsRequest,
    ListEndpointsResponse,
    UpdateEndpointRequest,
    UpdateEndpointWeightsAndCapacitiesRequest,
)
from dockyard.engine.core import Engine
from dockyard.engine.endpoints import EndpointView


def described(view: EndpointView) -> DescribeEndpointResponse:
    record = view.record
    return DescribeEndpointResponse(
        endpoint_name=record.name,
        endpoint_arn=record.arn,
        endpoint_config_name=record.state.endpoint_config_name,
        # Every endpoint has a status; the store's column allows none for kinds that have none.
        endpoint_status=EndpointStatus(record.status or EndpointStatus.CREATING),
        creation_time=record.creation_time,
        last_modified_time=record.last_modified_time or record.creation_time,
        production_variants=view.variants,
        failure_reason=record.state.failure_reason or None,
    )


def operations(engine: Engine) -> dict[str, Operation]:
    endpoints = engine.endpoints

    def describe(body: dict[str, Any]) -> dict[str, Any]:
        view = endpoints.describe(EndpointNameRequest.from_wire(body).endpoint_name)
        return described(view).to_wire()

    def list_(body: dict[str, Any]) -> dict[str, Any]:
        page = endpoints.list(ListEndpointsRequest.from_wire(body))
        summaries = [
            EndpointSummary(
                endpoint_name=e.name,
                endpoint_arn=e.arn,
                creation_time=e.creation_time,
                last_modified_time=e.last_modified_time or e.creation_time,
                endpoint_status=EndpointStatus(e.status or EndpointStatus.CREATING),
            )
            for e in page.items
        ]
        return ListEndpointsResponse(endpoints=summaries, next_token=page.next_token).to_wire()

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
        "DescribeEndpoint": describe,
        "ListEndpoints": list_,
        "DeleteEndpoint": delete,
        "UpdateEndpointWeightsAndCapacities": lambda body: {
            "EndpointArn": endpoints.update_weights_and_capacities(
                UpdateEndpointWeightsAndCapacitiesRequest.from_wire(body)
            )
        },
    }
