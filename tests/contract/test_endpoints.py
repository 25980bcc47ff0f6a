"""The endpoint status table: the paths SageMaker documents, and what it forbids."""

from __future__ import annotations

import itertools

import pytest

from dockyard.contract.endpoints import (
    ENDPOINT_TRANSITIONS,
    CreateEndpointRequest,
    EndpointStatus,
    check_endpoint_transition,
)
from dockyard.contract.errors import InvalidTransition, ValidationError

E = EndpointStatus


@pytest.mark.parametrize(
    "path",
    [
        [E.CREATING, E.IN_SERVICE, E.UPDATING, E.IN_SERVICE, E.DELETING],
        [E.CREATING, E.FAILED, E.DELETING],
        [E.IN_SERVICE, E.SYSTEM_UPDATING, E.IN_SERVICE],
        [E.IN_SERVICE, E.UPDATING, E.ROLLING_BACK, E.IN_SERVICE],
    ],
)
def test_documented_paths(path: list[EndpointStatus]) -> None:
    for current, target in itertools.pairwise(path):
        check_endpoint_transition(current, target)


def test_only_delete_is_allowed_on_a_failed_endpoint_and_deleting_is_final() -> None:
    assert ENDPOINT_TRANSITIONS[E.FAILED] == {E.DELETING}
    assert ENDPOINT_TRANSITIONS[E.DELETING] == frozenset()
    with pytest.raises(InvalidTransition):
        check_endpoint_transition(E.FAILED, E.UPDATING)
    with pytest.raises(InvalidTransition):
        check_endpoint_transition(E.CREATING, E.UPDATING)


def test_endpoint_names_follow_the_api_pattern() -> None:
    assert CreateEndpointRequest.from_wire({"EndpointName": "iris-1", "EndpointConfigName": "c"})
    with pytest.raises(ValidationError, match="endpointName"):
        CreateEndpointRequest.from_wire({"EndpointName": "iris_1", "EndpointConfigName": "c"})
