"""Models and endpoint configurations on the wire: the create, describe and list shapes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from dockyard.contract import names
from dockyard.contract.shapes import ListShape, Timestamp, WireShape
from dockyard.contract.training_jobs import Tag

ModelName = Annotated[
    str, Field(min_length=1, max_length=names.MAX_NAME_LENGTH, pattern=names.MODEL_NAME.pattern)
]
ConfigName = Annotated[
    str, Field(min_length=1, max_length=names.MAX_NAME_LENGTH, pattern=names.JOB_NAME.pattern)
]
ModelEnvironment = Annotated[
    dict[
        Annotated[str, Field(max_length=1024, pattern=names.ENV_KEY.pattern)],
        Annotated[str, Field(max_length=1024)],
    ],
    Field(max_length=100),
]


class ContainerDefinition(WireShape):
    container_hostname: Annotated[str, Field(max_length=63)] | None = None
    image: Annotated[str, Field(min_length=1, max_length=255)]
    mode: Literal["SingleModel", "MultiModel"] = "SingleModel"
    model_data_url: Annotated[str, Field(max_length=1024)] | None = None
    environment: ModelEnvironment = {}

    @model_validator(mode="after")
    def _single_model(self) -> ContainerDefinition:
        if self.mode == "MultiModel":
            raise ValueError("Member Mode MultiModel (multi-model endpoints) is not supported yet")
        url = self.model_data_url
        if url is not None and not url.startswith(("s3://", "file://", "/")):
            raise ValueError("Member ModelDataUrl must be an s3:// or file:// URI of a .tar.gz")
        return self


class CreateModelRequest(WireShape):
    model_name: ModelName
    primary_container: ContainerDefinition | None = None
    containers: Annotated[list[ContainerDefinition], Field(min_length=1, max_length=15)] | None = (
        None
    )
    execution_role_arn: Annotated[str, Field(max_length=2048)] | None = None
    enable_network_isolation: bool | None = None
    tags: Annotated[list[Tag], Field(max_length=50)] = []

    @model_validator(mode="after")
    def _one_container(self) -> CreateModelRequest:
        if self.primary_container is None and not self.containers:
            raise ValueError("Member must have PrimaryContainer or Containers")
        if self.containers and len(self.containers) > 1:
            raise ValueError("Member Containers: inference pipelines are not supported yet")
        return self

    @property
    def container(self) -> ContainerDefinition:
        return self.primary_container or (self.containers or [])[0]


class ProductionVariant(WireShape):
    variant_name: ConfigName
    model_name: ModelName
    initial_instance_count: Annotated[int, Field(ge=1)] = 1
    instance_type: str = "local"
    initial_variant_weight: Annotated[float, Field(ge=0)] = 1.0
    container_startup_health_check_timeout_in_seconds: (
        Annotated[int, Field(ge=60, le=3600)] | None
    ) = None
    model_data_download_timeout_in_seconds: Annotated[int, Field(ge=60, le=3600)] | None = None


class CreateEndpointConfigRequest(WireShape):
    endpoint_config_name: ConfigName
    production_variants: Annotated[list[ProductionVariant], Field(min_length=1, max_length=10)]

    @model_validator(mode="after")
    def _unique_variants(self) -> CreateEndpointConfigRequest:
        seen = [v.variant_name for v in self.production_variants]
        if len(seen) != len(set(seen)):
            raise ValueError("Member ProductionVariants must have unique VariantName values")
        return self


class ModelNameRequest(WireShape):
    model_name: ModelName


class EndpointConfigNameRequest(WireShape):
    endpoint_config_name: ConfigName


class ListRequest(ListShape):
    """ListModels and ListEndpointConfigs take the same members."""

    sort_by: Literal["Name", "CreationTime"] = "CreationTime"
    sort_order: Literal["Ascending", "Descending"] = "Descending"


class DescribeModelResponse(WireShape):
    model_name: str
    primary_container: ContainerDefinition | None = None
    containers: list[ContainerDefinition] | None = None
    execution_role_arn: str | None = None
    creation_time: Timestamp
    model_arn: str
    enable_network_isolation: bool = False


class ModelSummary(WireShape):
    model_name: str
    model_arn: str
    creation_time: Timestamp


class ListModelsResponse(WireShape):
    models: list[ModelSummary]
    next_token: str | None = None


class DescribeEndpointConfigResponse(WireShape):
    endpoint_config_name: str
    endpoint_config_arn: str
    production_variants: list[ProductionVariant]
    creation_time: Timestamp


class EndpointConfigSummary(WireShape):
    endpoint_config_name: str
    endpoint_config_arn: str
    creation_time: Timestamp


class ListEndpointConfigsResponse(WireShape):
    endpoint_configs: list[EndpointConfigSummary]
    next_token: str | None = None
