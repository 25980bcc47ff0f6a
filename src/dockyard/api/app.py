"""The app factory: one ASGI app serving every API of dockyard over one port."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from dockyard import __version__
from dockyard.api import (
    cloudwatch_wire,
    endpoints,
    housekeeping,
    logs,
    models,
    prometheus,
    repositories,
    tags,
    training_jobs,
    transform_jobs,
)
from dockyard.api.auth import SignedApi, SigV4Middleware
from dockyard.api.aws_chunked import S3_PAYLOAD_MODES
from dockyard.api.cloudwatch import CloudWatchApp
from dockyard.api.cloudwatch import refusal as cloudwatch_refusal
from dockyard.api.keys import KeyRing, home_id, server_keys
from dockyard.api.limits import check_instance_counts, parse_json_object, read_body
from dockyard.api.protocol import Operation, aws_error, aws_response, error_response
from dockyard.api.runtime import RuntimeApp
from dockyard.api.s3.app import S3App
from dockyard.api.s3.staging import Staging
from dockyard.api.s3.wire import s3_refusal
from dockyard.api.sts import StsApp, sts_refusal
from dockyard.api.validation import check_request
from dockyard.engine.core import Engine

log = logging.getLogger(__name__)

# X-Amz-Target prefixes: `SageMaker.CreateTrainingJob`, `Logs_20140328.GetLogEvents`.
SAGEMAKER_TARGET = "SageMaker"
LOGS_TARGET = "Logs_20140328"
ECR_TARGET = "AmazonEC2ContainerRegistry_V20150921"
# The botocore service model each target's requests are checked against.
SERVICE_MODELS = {SAGEMAKER_TARGET: "sagemaker", LOGS_TARGET: "logs", ECR_TARGET: "ecr"}


def create_app(
    engine: Engine, *, close_engine: bool = True, keys: KeyRing | None = None
) -> SigV4Middleware:
    """SigV4 in front of everything; requests signed for S3 go to the S3 API, the others to
    the runtime API (InvokeEndpoint) in front of the control plane and the Logs API. `keys`
    default to the settings' (see api/keys.py)."""
    services: dict[str, dict[str, Operation]] = {
        SAGEMAKER_TARGET: tags.tagged_creates(
            engine,
            {
                **training_jobs.operations(engine),
                **models.operations(engine),
                **endpoints.operations(engine),
                **transform_jobs.operations(engine),
                **tags.operations(engine),
            },
        ),
        LOGS_TARGET: logs.operations(engine),
        ECR_TARGET: repositories.operations(engine),
        housekeeping.TARGET: housekeeping.operations(engine),
    }
    settings = engine.settings

    def checked(service: str, name: str, operation: Operation, raw: bytes) -> dict[str, Any]:
        """Parse, check against botocore's model and the server's limits, then run."""
        body = parse_json_object(raw, settings.max_json_depth)
        if service in SERVICE_MODELS:  # dockyard's own operations: their shapes check them
            check_request(SERVICE_MODELS[service], name, body)
        check_instance_counts(name, body, settings)
        return operation(body)

    async def dispatch(request: Request) -> Response:
        target = request.headers.get("x-amz-target", "")
        service, _, operation_name = target.partition(".")
        operations = services.get(service)
        if operations is None:
            return aws_error(
                "UnknownOperationException",
                f"X-Amz-Target {target or '(missing)'} names no service dockyard serves",
            )
        operation = operations.get(operation_name)
        if operation is None:
            return aws_error(
                "UnknownOperationException",
                f"{service}.{operation_name} is not implemented by dockyard yet",
            )
        try:
            raw = await read_body(request, settings.max_request_bytes)
            result = await run_in_threadpool(checked, service, operation_name, operation, raw)
        except Exception as exc:
            return error_response(exc)
        return aws_response(result)

    async def health(_: Request) -> Response:
        # Anyone may ask (clients find the background server with it): no path, no user.
        return JSONResponse(
            {"status": "ok", "version": __version__, "home_id": home_id(engine.settings.home)}
        )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        if close_engine:
            await run_in_threadpool(engine.close)

    async def no_such_route(request: Request, exc: Exception) -> Response:
        # AWS-shaped like every other answer, so any AWS client reads why.
        status = getattr(exc, "status_code", 404)
        return aws_error(
            "UnknownOperationException",
            f"{request.method} {request.url.path} is not an API of dockyard: the control plane "
            "is POST / with X-Amz-Target, InvokeEndpoint POST /endpoints/<name>/invocations",
            status,
        )

    control_plane = Starlette(
        routes=[
            Route("/", dispatch, methods=["POST"]),
            Route("/healthz", health, methods=["GET"]),
            Route("/metrics", prometheus.MetricsEndpoint(engine).handle, methods=["GET"]),
        ],
        exception_handlers={404: no_such_route, 405: no_such_route},
        lifespan=lifespan,
    )
    if keys is None:
        keys = server_keys(engine.settings)
    # APIs told apart by the service their requests are signed for, each with the shape of its
    # refusals; the rest by X-Amz-Target or path. Another such API is one more entry.
    by_service = {
        "s3": SignedApi(
            S3App(engine.store, Staging(settings.home / "s3-api")),
            refusal=s3_refusal,
            payload_modes=S3_PAYLOAD_MODES,
            presigned_payload_unsigned=True,
        ),
        "sts": SignedApi(StsApp(settings), refusal=sts_refusal),
        # CloudWatch in any of its three protocols (api/cloudwatch_wire.py).
        cloudwatch_wire.model().signing_name: SignedApi(
            CloudWatchApp(engine), refusal_by_head=cloudwatch_refusal
        ),
    }
    return SigV4Middleware(RuntimeApp(engine, control_plane), keys, by_service=by_service)
