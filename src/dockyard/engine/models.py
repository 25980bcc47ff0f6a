"""Models and endpoint configurations: immutable resources, checked when they are created."""

from __future__ import annotations

import json
import time
from typing import Any

from dockyard.contract.errors import NotFoundError
from dockyard.contract.instance_types import instance_type
from dockyard.contract.models import CreateEndpointConfigRequest, CreateModelRequest, ListRequest
from dockyard.contract.opt_ml import CONTAINER_ROOT
from dockyard.engine.paging import resource_page
from dockyard.engine.resources import NamedResources
from dockyard.engine.staging import local_path_of
from dockyard.runtimes.frameworks import resolve_framework
from dockyard.runtimes.images import read_image
from dockyard.storage.metadata import ResourceRecord
from dockyard.storage.objects import S3Uri

MODEL = "model"
SUBMIT_DIRECTORY_VARIABLE = "SAGEMAKER_SUBMIT_DIRECTORY"
ENDPOINT_CONFIG = "endpoint-config"


class _Resources(NamedResources):
    """What models and endpoint configs share: store a validated request, describe it back,
    list and delete. Not-found and duplicates are ValidationException, as SageMaker answers."""

    list_key = ""  # "Models", "EndpointConfigs"
    name_key = ""  # "ModelName", "EndpointConfigName"

    def _store(self, name: str, wire: dict[str, Any]) -> str:
        record = ResourceRecord(self.kind, name, self.arn(name), json.dumps(wire), time.time())
        self.ctx.metadata.insert_resource(
            record, f'Cannot create already existing {self.label} "{record.arn}".'
        )
        return record.arn

    def delete(self, name: str) -> None:
        if not self.ctx.metadata.delete_resource(self.kind, name):
            raise NotFoundError(f'Could not find {self.label} "{self.arn(name)}".')

    def list(self, request: ListRequest) -> dict[str, Any]:
        arn_key = self.name_key.removesuffix("Name") + "Arn"

        def summary(record: ResourceRecord) -> dict[str, Any]:
            return {
                self.name_key: record.name,
                arn_key: record.arn,
                "CreationTime": record.creation_time,
            }

        return resource_page(self.ctx.metadata, self.kind, request, self.list_key, summary)


class Models(_Resources):
    kind, label, list_key, name_key = MODEL, "model", "Models", "ModelName"

    def create(self, request: CreateModelRequest) -> str:
        container = request.container
        if resolve_framework(container.image, self.ctx.frameworks) is None:
            read_image(container.image)  # a clear error now, not when an endpoint starts
        url = container.model_data_url
        if url is not None:
            path = local_path_of(url)
            if path is not None:
                # Where it is first (whether it exists says something of the folder too).
                resolved = self.ctx.local_paths.writable(f"ModelDataUrl {url}", path)
                if not resolved.is_file():
                    raise NotFoundError(f"ModelDataUrl {url}: {path} is not a file")
            else:
                target = S3Uri.parse(url)
                self.ctx.store.head(target.bucket, target.key)
        code = container.environment.get(SUBMIT_DIRECTORY_VARIABLE, "").strip()
        code_path = local_path_of(code) if code else None
        # Paths inside the container (/opt/ml/model/code) are the image's business.
        if code_path is not None and not code.startswith(CONTAINER_ROOT + "/"):
            self.ctx.local_paths.readable(f"{SUBMIT_DIRECTORY_VARIABLE} {code}", code_path)
        return self._store(request.model_name, request.to_wire())

    def describe(self, name: str) -> dict[str, Any]:
        record = self.record(name)
        request = json.loads(record.request)
        out: dict[str, Any] = {"ModelName": record.name}
        for key in ("PrimaryContainer", "Containers", "ExecutionRoleArn"):
            if key in request:
                out[key] = request[key]
        out["CreationTime"] = record.creation_time
        out["ModelArn"] = record.arn
        out["EnableNetworkIsolation"] = bool(request.get("EnableNetworkIsolation", False))
        return out


class EndpointConfigs(_Resources):
    kind, label = ENDPOINT_CONFIG, "endpoint configuration"
    list_key, name_key = "EndpointConfigs", "EndpointConfigName"

    def create(self, request: CreateEndpointConfigRequest) -> str:
        for variant in request.production_variants:
            instance_type(variant.instance_type)
            Models(self.ctx).record(variant.model_name)
        return self._store(request.endpoint_config_name, request.to_wire())

    def describe(self, name: str) -> dict[str, Any]:
        record = self.record(name)
        request = json.loads(record.request)
        return {
            "EndpointConfigName": record.name,
            "EndpointConfigArn": record.arn,
            "ProductionVariants": request["ProductionVariants"],
            "CreationTime": record.creation_time,
        }
