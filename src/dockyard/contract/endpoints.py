"""Endpoints on the wire: request and response shapes, EndpointStatus and its allowed
transitions, and the state an endpoint keeps."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field

from dockyard.contract import names
from dockyard.contract.errors import InvalidTransition
from dockyard.contract.shapes import ListShape, Timestamp, WireShape

EndpointName = Annotated[
    str, Field(min_length=1, max_length=names.MAX_NAME_LENGTH, pattern=names.JOB_NAME.pattern)
]
# The start-up window for /ping: 4 minutes unless the variant sets
# ContainerStartupHealthCheckTimeoutInSeconds (60 to 3600), as the 2023 developer guide says.
DEFAULT_STARTUP_SECONDS = 240
# Instances being replaced get SIGTERM, then SIGKILL this long after (hosting's 30 s).
STOP_GRACE_SECONDS = 30


class EndpointStatus(StrEnum):
    OUT_OF_SERVICE = "OutOfService"
    CREATING = "Creating"
    UPDATING = "Updating"
    SYSTEM_UPDATING = "SystemUpdating"
    ROLLING_BACK = "RollingBack"
    IN_SERVICE = "InService"
    DELETING = "Deleting"
    FAILED = "Failed"
    UPDATE_ROLLBACK_FAILED = "UpdateRollbackFailed"


_E = EndpointStatus
# Creating ends InService or Failed; an update runs from InService and returns there (its
# rollback too); SystemUpdating is dockyard replacing a crashed instance; only DeleteEndpoint is
# allowed on a Failed endpoint.
ENDPOINT_TRANSITIONS: dict[EndpointStatus, frozenset[EndpointStatus]] = {
    _E.CREATING: frozenset({_E.IN_SERVICE, _E.FAILED, _E.DELETING}),
    _E.IN_SERVICE: frozenset({_E.UPDATING, _E.SYSTEM_UPDATING, _E.DELETING, _E.OUT_OF_SERVICE}),
    _E.UPDATING: frozenset({_E.IN_SERVICE, _E.ROLLING_BACK, _E.DELETING}),
    _E.ROLLING_BACK: frozenset({_E.IN_SERVICE, _E.UPDATE_ROLLBACK_FAILED, _E.DELETING}),
    _E.SYSTEM_UPDATING: frozenset({_E.IN_SERVICE, _E.OUT_OF_SERVICE, _E.DELETING}),
    _E.OUT_OF_SERVICE: frozenset({_E.SYSTEM_UPDATING, _E.IN_SERVICE, _E.DELETING}),
    _E.UPDATE_ROLLBACK_FAILED: frozenset({_E.DELETING}),
    _E.FAILED: frozenset({_E.DELETING}),
    _E.DELETING: frozenset(),
}
assert set(ENDPOINT_TRANSITIONS) == set(EndpointStatus)


def check_endpoint_transition(current: EndpointStatus, target: EndpointStatus) -> None:
    if target not in ENDPOINT_TRANSITIONS[current]:
        raise InvalidTransition(f"an endpoint cannot go from {current} to {target}")


class CreateEndpointRequest(WireShape):
    endpoint_name: EndpointName
    endpoint_config_name: EndpointName


class UpdateEndpointRequest(WireShape):
    endpoint_name: EndpointName
    endpoint_config_name: EndpointName
    retain_all_variant_properties: bool | None = None


class EndpointNameRequest(WireShape):
    endpoint_name: EndpointName


class ListEndpointsRequest(ListShape):
    last_modified_time_after: float | None = None
    last_modified_time_before: float | None = None
    status_equals: EndpointStatus | None = None
    sort_by: Literal["Name", "CreationTime", "Status"] = "CreationTime"
    sort_order: Literal["Ascending", "Descending"] = "Descending"


class DesiredWeightAndCapacity(WireShape):
    variant_name: EndpointName
    desired_weight: Annotated[float, Field(ge=0)] | None = None
    desired_instance_count: Annotated[int, Field(ge=1)] | None = None


class UpdateEndpointWeightsAndCapacitiesRequest(WireShape):
    endpoint_name: EndpointName
    desired_weights_and_capacities: Annotated[
        list[DesiredWeightAndCapacity], Field(min_length=1, max_length=10)
    ]


# ---------------------------------------------------------------------------------------------
# What an endpoint keeps beside its status


class VariantOverride(WireShape):
    """A variant's weight and instance count as UpdateEndpointWeightsAndCapacities set them."""

    # Lower case: the names these had when the state was first kept, so older rows read back.
    weight: float | None = Field(default=None, alias="weight")
    count: int | None = Field(default=None, alias="count")


class EndpointState(WireShape):
    endpoint_config_name: str
    # The config an UpdateEndpoint is moving to, while it runs.
    pending_endpoint_config_name: str | None = None
    failure_reason: str | None = None
    # Kept so that a restart brings the endpoint back at the size it was given.
    variant_overrides: dict[str, VariantOverride] = {}


# ---------------------------------------------------------------------------------------------
# Response shapes


class DeployedImage(WireShape):
    specified_image: str
    resolved_image: str


class ProductionVariantSummary(WireShape):
    variant_name: str
    deployed_images: list[DeployedImage]
    current_weight: float
    desired_weight: float
    current_instance_count: int
    desired_instance_count: int


class DescribeEndpointResponse(WireShape):
    endpoint_name: str
    endpoint_arn: str
    endpoint_config_name: str
    endpoint_status: EndpointStatus
    creation_time: Timestamp
    last_modified_time: Timestamp
    production_variants: list[ProductionVariantSummary] | None = None
    failure_reason: str | None = None


class EndpointSummary(WireShape):
    endpoint_name: str
    endpoint_arn: str
    creation_time: Timestamp
    last_modified_time: Timestamp
    endpoint_status: EndpointStatus


class ListEndpointsResponse(WireShape):
    endpoints: list[EndpointSummary]
    next_token: str | None = None
