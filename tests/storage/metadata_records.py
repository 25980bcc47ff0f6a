"""Valid records of every resource kind for the metadata store's tests (the store keeps typed
requests and states, so each needs a real Create* request)."""

from __future__ import annotations

from typing import Any

from dockyard.contract import names
from dockyard.contract.endpoints import CreateEndpointRequest, EndpointState
from dockyard.contract.models import CreateEndpointConfigRequest, CreateModelRequest
from dockyard.contract.repositories import CreateRepositoryRequest
from dockyard.contract.shapes import NoState, WireShape
from dockyard.contract.training_jobs import (
    CreateTrainingJobRequest,
    SecondaryStatus,
    TrainingJobState,
)
from dockyard.contract.transform_jobs import CreateTransformJobRequest, TransformJobState
from dockyard.storage.metadata import Transition
from dockyard.storage.records import (
    ENDPOINT_CONFIGS,
    ENDPOINTS,
    MODELS,
    REPOSITORIES,
    TRAINING_JOBS,
    TRANSFORM_JOBS,
    Kind,
    Record,
    TrainingJobRecord,
)

BASE = 1_796_208_297.123456  # a creation time with sub-millisecond digits, kept exactly
# The kinds stored with insert_resource (training jobs have insert_training_job).
RESOURCE_KINDS: list[Kind[Any, Any]] = [
    MODELS,
    ENDPOINT_CONFIGS,
    ENDPOINTS,
    TRANSFORM_JOBS,
    REPOSITORIES,
]
# Kinds with a lifecycle: a status and a mutable state.
STATUS_OF = {ENDPOINTS.name: "Creating", TRANSFORM_JOBS.name: "InProgress"}


def request_and_state(kind: Kind[Any, Any], name: str) -> tuple[WireShape, WireShape]:
    if kind is MODELS:
        image = {"Image": "examples/r"}
        request: WireShape = CreateModelRequest.from_wire(
            {"ModelName": name, "PrimaryContainer": image}
        )
        return request, NoState()
    if kind is ENDPOINT_CONFIGS:
        variant = {"VariantName": "v", "ModelName": "m"}
        request = CreateEndpointConfigRequest.from_wire(
            {"EndpointConfigName": name, "ProductionVariants": [variant]}
        )
        return request, NoState()
    if kind is ENDPOINTS:
        request = CreateEndpointRequest(endpoint_name=name, endpoint_config_name="c")
        return request, EndpointState(endpoint_config_name="c")
    if kind is TRANSFORM_JOBS:
        request = CreateTransformJobRequest.from_wire(
            {
                "TransformJobName": name,
                "ModelName": "m",
                "TransformInput": {
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in"}}
                },
                "TransformOutput": {"S3OutputPath": "s3://b/out"},
                "TransformResources": {"InstanceType": "local", "InstanceCount": 1},
            }
        )
        return request, TransformJobState()
    assert kind is REPOSITORIES
    return CreateRepositoryRequest(repository_name=name), NoState()


def record(
    kind: Kind[Any, Any],
    name: str,
    created: float = BASE,
    status: str | None = None,
    modified: float | None = None,
) -> Record[Any, Any]:
    request, state = request_and_state(kind, name)
    lifecycle = kind.name in STATUS_OF
    return Record(
        name=name,
        arn=names.arn(kind.name, name),
        creation_time=created,
        state=state,
        status=(status or STATUS_OF[kind.name]) if lifecycle else None,
        last_modified_time=(modified or created) if lifecycle else None,
        request=request,
    )


def training_job(
    name: str, created: float = BASE, secondary: SecondaryStatus = SecondaryStatus.STARTING
) -> TrainingJobRecord:
    request = CreateTrainingJobRequest.from_wire(
        {
            "TrainingJobName": name,
            "RoleArn": "arn:aws:iam::111111111111:role/metadata",
            "AlgorithmSpecification": {"TrainingImage": "examples/r"},
            "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
            "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1},
            "HyperParameters": {"lr": "0.1"},
        }
    )
    return Record(
        name=name,
        arn=names.arn(TRAINING_JOBS.name, name),
        creation_time=created,
        state=TrainingJobState(
            secondary_status=secondary,
            model_artifacts=f"s3://b/out/{name}/output/model.tar.gz",
        ),
        status="InProgress",
        last_modified_time=created,
        request=request,
    )


def first_transition(created: float = BASE) -> Transition:
    return Transition(SecondaryStatus.STARTING.value, created, None, "Starting the training job")
