"""The JSON 1.1 APIs by X-Amz-Target prefix: one table, and one function that answers an
operation of it. The signed API (POST / with X-Amz-Target) and the console's gateway
(POST /console/api/<Target>.<Operation>) both answer through it, so they cannot drift apart.

Another JSON API is one more `JsonApi` entry in JSON_APIS."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from dockyard.api import (
    endpoints,
    housekeeping,
    logs,
    models,
    repositories,
    tags,
    training_jobs,
    transform_jobs,
)
from dockyard.api.limits import check_instance_counts, parse_json_object, read_body
from dockyard.api.protocol import Operation, aws_error, aws_response, error_response
from dockyard.api.validation import check_request
from dockyard.engine.core import Engine
from dockyard.settings import Settings

# X-Amz-Target prefixes: `SageMaker.CreateTrainingJob`, `Logs_20140328.GetLogEvents`.
SAGEMAKER_TARGET = "SageMaker"
LOGS_TARGET = "Logs_20140328"
ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921"


def sagemaker_operations(engine: Engine) -> dict[str, Operation]:
    return tags.tagged_creates(
        engine,
        {
            **training_jobs.operations(engine),
            **models.operations(engine),
            **endpoints.operations(engine),
            **transform_jobs.operations(engine),
            **tags.operations(engine),
        },
    )


@dataclass(frozen=True)
class JsonApi:
    """One API: its X-Amz-Target prefix, the botocore service model its requests are checked
    against (None: dockyard's own operations, whose pydantic shapes check them), and its
    operations, made for an engine."""

    target: str
    model: str | None
    operations: Callable[[Engine], dict[str, Operation]]


JSON_APIS = (
    JsonApi(SAGEMAKER_TARGET, "sagemaker", sagemaker_operations),
    JsonApi(LOGS_TARGET, "logs", logs.operations),
    JsonApi(ECR_TARGET, "ecr", repositories.operations),
    JsonApi(housekeeping.TARGET, None, housekeeping.operations),
)

# The botocore service model of each target (SigV4 reads the signing names from these).
SERVICE_MODELS = {api.target: api.model for api in JSON_APIS if api.model is not None}


@dataclass(frozen=True)
class _Served:
    model: str | None
    operations: Mapping[str, Operation]


class JsonApis:
    """The operations of `apis` for one engine, answered the same way whoever asks."""

    def __init__(self, engine: Engine, apis: Iterable[JsonApi] = JSON_APIS) -> None:
        self.settings: Settings = engine.settings
        self._by_target = {api.target: _Served(api.model, api.operations(engine)) for api in apis}

    async def answer(self, target: str, request: Request) -> Response:
        """Run the operation `target` (`Service.Operation`) names on the request's JSON body:
        the body read within the size limit, parsed within the depth limit, checked against
        the service's model and the instance limits, run in a worker thread. The answer is
        the operation's JSON, or the AWS-shaped error with its status; never a traceback."""
        service, _, name = target.partition(".")
        served = self._by_target.get(service)
        if served is None:
            return aws_error(
                "UnknownOperationException",
                f"X-Amz-Target {target or '(missing)'} names no service dockyard serves",
            )
        operation = served.operations.get(name)
        if operation is None:
            return aws_error(
                "UnknownOperationException",
                f"{service}.{name} is not implemented by dockyard yet",
            )
        try:
            raw = await read_body(request, self.settings.max_request_bytes)
            result = await run_in_threadpool(self._checked, served.model, name, operation, raw)
        except Exception as exc:
            return error_response(exc)
        return aws_response(result)

    def _checked(
        self, model: str | None, name: str, operation: Operation, raw: bytes
    ) -> dict[str, Any]:
        """Parse, check against botocore's model and the server's limits, then run."""
        body = parse_json_object(raw, self.settings.max_json_depth)
        if model is not None:
            check_request(model, name, body)
        check_instance_counts(name, body, self.settings)
        return operation(body)
