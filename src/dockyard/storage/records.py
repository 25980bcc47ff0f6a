"""Typed records of named resources (training jobs, models, endpoint configs, endpoints,
transform jobs, ECR repositories): each kind's request and state types, and the one place they
become the store's JSON text and back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from dockyard.contract.endpoints import CreateEndpointRequest, EndpointState
from dockyard.contract.models import CreateEndpointConfigRequest, CreateModelRequest
from dockyard.contract.repositories import CreateRepositoryRequest
from dockyard.contract.shapes import NoState, WireShape
from dockyard.contract.training_jobs import CreateTrainingJobRequest, TrainingJobState
from dockyard.contract.transform_jobs import CreateTransformJobRequest, TransformJobState

Request = TypeVar("Request", bound=WireShape)
State = TypeVar("State", bound=WireShape)


@dataclass(frozen=True)
class Kind(Generic[Request, State]):
    """A kind of named resource: its name in the store (and its ARNs), and the types of its
    validated Create* request and of its mutable state."""

    name: str
    request_type: type[Request]
    state_type: type[State]

    # The wire form (PascalCase, no nulls) is the stored form: rows written before the records
    # were typed read back unchanged.
    def dump_request(self, request: Request) -> str:
        return request.model_dump_json(by_alias=True, exclude_none=True)

    def load_request(self, text: str) -> Request:
        return self.request_type.model_validate_json(text)

    def dump_state(self, state: State) -> str:
        return state.model_dump_json(by_alias=True, exclude_none=True)

    def load_state(self, text: str | None) -> State:
        return self.state_type.model_validate_json(text or "{}")

    def changed_state(self, state: State, changes: Mapping[str, Any]) -> State:
        """`state` with `changes` (field names) set; None clears a field. Unknown names are a
        programming error, refused here rather than silently dropped."""
        unknown = set(changes) - set(self.state_type.model_fields)
        if unknown:
            raise ValueError(f"{self.name} state has no field {', '.join(sorted(unknown))}")
        return self.state_type.model_validate({**state.model_dump(), **changes})


@dataclass(frozen=True, kw_only=True)
class Listed(Generic[State]):
    """A resource as a List* operation sees it: all but its request."""

    name: str
    arn: str
    creation_time: float
    state: State
    # Only resources with a lifecycle (jobs, endpoints) have these.
    status: str | None = None
    last_modified_time: float | None = None


@dataclass(frozen=True, kw_only=True)
class Record(Listed[State], Generic[Request, State]):
    """A stored resource: its validated Create* request and its current state."""

    request: Request


TRAINING_JOBS = Kind("training-job", CreateTrainingJobRequest, TrainingJobState)
MODELS = Kind("model", CreateModelRequest, NoState)
ENDPOINT_CONFIGS = Kind("endpoint-config", CreateEndpointConfigRequest, NoState)
ENDPOINTS = Kind("endpoint", CreateEndpointRequest, EndpointState)
TRANSFORM_JOBS = Kind("transform-job", CreateTransformJobRequest, TransformJobState)
# ECR repositories: names up to 256 characters (migration 0006 makes room for them).
REPOSITORIES = Kind("ecr-repository", CreateRepositoryRequest, NoState)

TrainingJobRecord = Record[CreateTrainingJobRequest, TrainingJobState]
