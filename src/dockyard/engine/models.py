"""Models and endpoint configurations: immutable resources, checked when they are created."""

from __future__ import annotations

import time

from dockyard.contract.errors import NotFoundError
from dockyard.contract.instance_types import instance_type
from dockyard.contract.models import CreateEndpointConfigRequest, CreateModelRequest, ListRequest
from dockyard.contract.opt_ml import CONTAINER_ROOT
from dockyard.contract.shapes import NoState
from dockyard.contract.tags import requested_runtime
from dockyard.engine.paging import Page, resource_page
from dockyard.engine.resources import NamedResources
from dockyard.engine.staging import local_path_of
from dockyard.storage.objects import S3Uri
from dockyard.storage.records import ENDPOINT_CONFIGS, MODELS, Listed, Record, Request

MODEL = MODELS.name
SUBMIT_DIRECTORY_VARIABLE = "SAGEMAKER_SUBMIT_DIRECTORY"
ENDPOINT_CONFIG = ENDPOINT_CONFIGS.name

ModelRecord = Record[CreateModelRequest, NoState]
EndpointConfigRecord = Record[CreateEndpointConfigRequest, NoState]


class _Resources(NamedResources[Request, NoState]):
    """What models and endpoint configs share: store a validated request, describe it back,
    list and delete. Not-found and duplicates are ValidationException, as SageMaker answers."""

    def _store(self, name: str, request: Request) -> str:
        record = Record(
            name=name,
            arn=self.arn(name),
            creation_time=time.time(),
            state=NoState(),
            request=request,
        )
        self.ctx.metadata.insert_resource(
            self.kind, record, f'Cannot create already existing {self.label} "{record.arn}".'
        )
        return record.arn

    def describe(self, name: str) -> Record[Request, NoState]:
        return self.record(name)

    def delete(self, name: str) -> None:
        if not self.ctx.metadata.delete_resource(self.kind, name):
            raise NotFoundError(f'Could not find {self.label} "{self.arn(name)}".')

    def list(self, request: ListRequest) -> Page[Listed[NoState]]:
        return resource_page(self.ctx.metadata, self.kind, request)


class Models(_Resources[CreateModelRequest]):
    kind, label = MODELS, "model"

    def create(self, request: CreateModelRequest) -> str:
        container = request.container
        # A clear error now, not when an endpoint starts.
        self.ctx.resolve_image(container.image, requested_runtime(request.tags))
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
        return self._store(request.model_name, request)


class EndpointConfigs(_Resources[CreateEndpointConfigRequest]):
    kind, label = ENDPOINT_CONFIGS, "endpoint configuration"

    def create(self, request: CreateEndpointConfigRequest) -> str:
        for variant in request.production_variants:
            instance_type(variant.instance_type)
            Models(self.ctx).record(variant.model_name)
        return self._store(request.endpoint_config_name, request)
