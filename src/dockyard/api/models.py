"""SageMaker model and endpoint configuration operations on the wire."""

from __future__ import annotations

from typing import Any

from dockyard.api.protocol import Operation
from dockyard.contract.models import (
    CreateEndpointConfigRequest,
    CreateModelRequest,
    EndpointConfigNameRequest,
    ListRequest,
    ModelNameRequest,
)
from dockyard.engine.core import Engine


def operations(engine: Engine) -> dict[str, Operation]:
    models, configs = engine.models, engine.endpoint_configs

    def create_model(body: dict[str, Any]) -> dict[str, Any]:
        return {"ModelArn": models.create(CreateModelRequest.from_wire(body))}

    def describe_model(body: dict[str, Any]) -> dict[str, Any]:
        return models.describe(ModelNameRequest.from_wire(body).model_name)

    def delete_model(body: dict[str, Any]) -> dict[str, Any]:
        models.delete(ModelNameRequest.from_wire(body).model_name)
        return {}

    def create_config(body: dict[str, Any]) -> dict[str, Any]:
        arn = configs.create(CreateEndpointConfigRequest.from_wire(body))
        return {"EndpointConfigArn": arn}

    def describe_config(body: dict[str, Any]) -> dict[str, Any]:
        return configs.describe(EndpointConfigNameRequest.from_wire(body).endpoint_config_name)

    def delete_config(body: dict[str, Any]) -> dict[str, Any]:
        configs.delete(EndpointConfigNameRequest.from_wire(body).endpoint_config_name)
        return {}

    return {
        "CreateModel": create_model,
        "DescribeModel": describe_model,
        "ListModels": lambda body: models.list(ListRequest.from_wire(body)),
        "DeleteModel": delete_model,
        "CreateEndpointConfig": create_config,
        "DescribeEndpointConfig": describe_config,
        "ListEndpointConfigs": lambda body: configs.list(ListRequest.from_wire(body)),
        "DeleteEndpointConfig": delete_config,
    }
