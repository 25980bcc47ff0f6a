"""SageMaker tags on the wire: AddTags, ListTags, DeleteTags, and `Tags` on every Create*."""

from __future__ import annotations

from typing import Any

from dockyard.api.protocol import Operation
from dockyard.contract.tags import AddTagsRequest, DeleteTagsRequest, ListTagsRequest, TaggedCreate
from dockyard.engine.core import Engine
from dockyard.engine.tags import check_keys

# Each Create* and the member of its answer that names what it made.
CREATED_ARN = {
    "CreateTrainingJob": "TrainingJobArn",
    "CreateModel": "ModelArn",
    "CreateEndpointConfig": "EndpointConfigArn",
    "CreateEndpoint": "EndpointArn",
    "CreateTransformJob": "TransformJobArn",
}


def _pairs(request: AddTagsRequest | TaggedCreate) -> list[tuple[str, str]]:
    return [(tag.key, tag.value) for tag in request.tags]


def operations(engine: Engine) -> dict[str, Operation]:
    tags = engine.tags

    def add(body: dict[str, Any]) -> dict[str, Any]:
        request = AddTagsRequest.from_wire(body)
        added = tags.add(request.resource_arn, _pairs(request))
        return {"Tags": [{"Key": key, "Value": value} for key, value in added]}

    def list_(body: dict[str, Any]) -> dict[str, Any]:
        request = ListTagsRequest.from_wire(body)
        page, token = tags.list(request.resource_arn, request.next_token, request.max_results)
        out: dict[str, Any] = {"Tags": [{"Key": key, "Value": value} for key, value in page]}
        if token is not None:
            out["NextToken"] = token
        return out

    def delete(body: dict[str, Any]) -> dict[str, Any]:
        request = DeleteTagsRequest.from_wire(body)
        tags.delete(request.resource_arn, request.tag_keys)
        return {}

    return {"AddTags": add, "ListTags": list_, "DeleteTags": delete}


def tagged_creates(engine: Engine, operations: dict[str, Operation]) -> dict[str, Operation]:
    """`operations` with each Create* storing the request's `Tags` on what it made. The keys
    are checked before the resource is made, so a refused tag makes nothing."""

    def wrap(operation: Operation, arn_key: str) -> Operation:
        def create(body: dict[str, Any]) -> dict[str, Any]:
            pairs = _pairs(TaggedCreate.from_wire(body))
            check_keys([key for key, _ in pairs])
            answer = operation(body)
            if pairs:
                engine.tags.add(answer[arn_key], pairs)
            return answer

        return create

    return {
        name: wrap(operation, CREATED_ARN[name]) if name in CREATED_ARN else operation
        for name, operation in operations.items()
    }
