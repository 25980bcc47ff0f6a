"""The response shapes' wire names against botocore's own SageMaker model: every member a shape
sends is one the operation's output declares, at every depth (a misspelt alias, such as
MaxPayloadInMb for MaxPayloadInMB, would be silently dropped by clients)."""

from __future__ import annotations

import typing
from typing import Any

import botocore.session
import pytest
from pydantic import BaseModel

from dockyard.contract import endpoints, models, training_jobs, transform_jobs

RESPONSES = {
    "DescribeModel": models.DescribeModelResponse,
    "ListModels": models.ListModelsResponse,
    "DescribeEndpointConfig": models.DescribeEndpointConfigResponse,
    "ListEndpointConfigs": models.ListEndpointConfigsResponse,
    "DescribeEndpoint": endpoints.DescribeEndpointResponse,
    "ListEndpoints": endpoints.ListEndpointsResponse,
    "DescribeTransformJob": transform_jobs.DescribeTransformJobResponse,
    "ListTransformJobs": transform_jobs.ListTransformJobsResponse,
    "DescribeTrainingJob": training_jobs.DescribeTrainingJobResponse,
    "ListTrainingJobs": training_jobs.ListTrainingJobsResponse,
}


@pytest.fixture(scope="module")
def service_model() -> Any:
    return botocore.session.get_session().get_service_model("sagemaker")


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds: X, X | None, list[X], dict[str, X]."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found = []
    for arg in typing.get_args(annotation):
        found += _models_in(arg)
    return found


def _inner(shape: Any) -> Any:
    """The structure a list or map member holds."""
    while shape.type_name in ("list", "map"):
        shape = shape.member if shape.type_name == "list" else shape.value
    return shape


def _unknown_members(model: type[BaseModel], shape: Any, where: str) -> list[str]:
    problems = []
    for name, field in model.model_fields.items():
        alias = field.alias or name
        if alias not in shape.members:
            problems.append(f"{where}.{alias}")
            continue
        for nested in _models_in(field.annotation):
            member = _inner(shape.members[alias])
            problems += _unknown_members(nested, member, f"{where}.{alias}")
    return problems


@pytest.mark.parametrize("operation", sorted(RESPONSES))
def test_every_member_is_in_the_output_shape(service_model: Any, operation: str) -> None:
    output = service_model.operation_model(operation).output_shape
    assert _unknown_members(RESPONSES[operation], output, operation) == []


def test_a_misspelt_member_is_found(service_model: Any) -> None:
    class Misspelt(BaseModel):
        MaxPayloadInMb: int | None = None  # the misspelling under test

    output = service_model.operation_model("DescribeTransformJob").output_shape
    assert _unknown_members(Misspelt, output, "X") == ["X.MaxPayloadInMb"]
