"""SageMaker model and endpoint configuration operations on the wire."""

from __future__ import annotations

from typing import Any

from dockyard.api.protocol import Operation
from dockyard.contract.models import (
    CreateEndpointConfigRequest,
    CreateModelRequest,
    DescribeEndpointConfigResponse,
    DescribeModelResponse,
    EndpointConfigNameRequest,
    EndpointConfigSummary,
    ListEndpointConfigsResponse,
    ListModelsResponse,
    ListRequest,
    ModelNameRequest,
    ModelSummary,
)
from dockyard.engine.core import Engine
from dockyard.engine.models import EndpointConfigRecord, ModelRecord


def described_model(record: ModelRecord) -> DescribeModelResponse:
    request = record.request
    return DescribeModelResponse(
        model_name=record.name,
        primary_container=request.primary_container,
        containers=request.containers,
        execution_role_arn=request.execution_role_arn,
        creation_time=record.creation_time,
        model_arn=record.arn,
        enable_network_isolation=bool(request.enable_network_isolation),
    )


def described_config(record: EndpointConfigRecord) -> DescribeEndpointConfigResponse:
    return DescribeEndpointConfigResponse(
        endpoint_config_name=record.name,
        endpoint_config_arn=record.arn,
        production_variants=record.request.production_variants,
        creation_time=record.creation_time,
    )


def operations(engine: Engine) -> dict[str, Operation]:
    models, configs = engine.models, engine.endpoint_configs

    def create_model(body: dict[str, Any]) -> dict[str, Any]:
        return {"ModelArn": models.create(CreateModelRequest.from_wire(body))}

    def describe_model(body: dict[str, Any]) -> dict[str, Any]:
        record = models.describe(ModelNameRequest.from_wire(body).model_name)
        return described_model(record).to_wire()

    def list_models(body: dict[str, Any]) -> dict[str, Any]:
        page = models.list(ListRequest.from_wire(body))
        summaries = [
            ModelSummary(model_name=m.name, model_arn=m.arn, creation_time=m.creation_time)
            for m in page.items
        ]
        return ListModelsResponse(models=summaries, next_token=page.next_token).to_wire()

    def delete_model(body: dict[str, Any]) -> dict[str, Any]:
        models.delete(ModelNameRequest.from_wire(body).model_name)
        return {}

    def create_config(body: dict[str, Any]) -> dict[str, Any]:
        arn = configs.create(CreateEndpointConfigRequest.from_wire(body))
        return {"EndpointConfigArn": arn}

    def describe_config(body: dict[str, Any]) -> dict[str, Any]:
        record = configs.describe(EndpointConfigNameRequest.from_wire(body).endpoint_config_name)
        return described_config(record).to_wire()

    def list_configs(body: dict[str, Any]) -> dict[str, Any]:
        page = configs.list(ListRequest.from_wire(body))
        summaries = [
            EndpointConfigSummary(
                endpoint_config_name=c.name,
                endpoint_config_arn=c.arn,
                creation_time=c.creation_time,
            )
            for c in page.items
        ]
        return ListEndpointConfigsResponse(
            endpoint_configs=summaries, next_token=page.next_token
        ).to_wire()

    def delete_config(body: dict[str, Any]) -> dict[str, Any]:
        configs.delete(EndpointConfigNameRequest.from_wire(body).endpoint_config_name)
        return {}

    return {
        "CreateModel": create_model,
        "DescribeModel": describe_model,
        "ListModels": list_models,
        "DeleteModel": delete_model,
        "CreateEndpointConfig": create_config,
        "DescribeEndpointConfig": describe_config,
        "ListEndpointConfigs": list_configs,
        "DeleteEndpointConfig": delete_config,
    }
