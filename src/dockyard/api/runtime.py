"""The SageMaker runtime on the wire (rest-json): InvokeEndpoint at
POST /endpoints/{name}/invocations. It is the hot path, so it is plain ASGI in front of the
control plane's routing; everything else goes on to the control plane."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from urllib.parse import unquote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dockyard.api.validation import check_invoke_endpoint
from dockyard.contract.endpoints import EndpointStatus
from dockyard.contract.errors import DockyardError, ModelNotReady, NotFoundError, ValidationError
from dockyard.engine.core import Engine
from dockyard.engine.endpoints import log_group
from dockyard.engine.router import (
    FORWARDED_HEADERS,
    ContainerFailure,
    Invocation,
    NoInstanceReady,
    Reply,
)
from dockyard.storage.records import ENDPOINTS

log = logging.getLogger(__name__)

MAX_BODY = 6291456  # InvokeEndpoint's BodyBlob limit (6 MB)
# Matched on the raw path, as AWS routes: an encoded `/` (%2F) belongs to the name, which the
# model then refuses, rather than making another path.
_PATH = re.compile(rb"^/endpoints/([^/]+)/invocations$")
_TARGET_VARIANT = b"x-amzn-sagemaker-target-variant"
# An endpoint in one of these becomes InService by itself: the caller may retry
# (ModelNotReadyException). In any other status but InService only a user's action helps.
_COMING = {
    EndpointStatus.CREATING,
    EndpointStatus.UPDATING,
    EndpointStatus.SYSTEM_UPDATING,
    EndpointStatus.ROLLING_BACK,
}


class RuntimeApp:
    """Answers InvokeEndpoint; hands every other request to `control_plane`."""

    def __init__(self, engine: Engine, control_plane: ASGIApp) -> None:
        self.engine = engine
        self.control_plane = control_plane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match = _PATH.match(scope.get("raw_path") or scope["path"].encode())
            if match is not None:
                name = unquote(match.group(1).decode("latin-1"))
                await self._invoke(name, scope, receive, send)
                return
        await self.control_plane(scope, receive, send)

    async def _invoke(self, name: str, scope: Scope, receive: Receive, send: Send) -> None:
        began = time.perf_counter_ns()
        try:
            check_invoke_endpoint(name, scope["headers"])
            headers, target = _forwarded(scope["headers"])
            body = await _read_body(scope, receive)
            if self.engine.router.route(name) is None:
                self._not_serving(name)
            try:
                reply = await self.engine.router.invoke(name, Invocation(body, headers, target))
            except NoInstanceReady:
                self._not_serving(name)  # deleted (or failed) meanwhile: that is the answer
                raise
        except ContainerFailure as no_answer:
            # No answer at all (a timeout, or instances that died with the request): SageMaker
            # reports these as ModelError with OriginalStatusCode 0.
            await _send(send, 424, *_model_error(self.engine, name, 0, no_answer.message))
            # Delivered, unanswered: an invocation and a 5XX error of the instance that had it
            # (engine/endpoint_metrics.py says why), with no latency to time.
            self.engine.endpoint_metrics.record(
                name, no_answer.variant, no_answer.instance, 0, None, None,
                no_answer.variant_instances,
            )  # fmt: skip
            return
        except DockyardError as exc:
            await _send(send, *_runtime_error(exc))
            return
        except Exception as exc:
            log.error("internal error while invoking endpoint %s", name, exc_info=exc)
            failure = DockyardError("dockyard hit an internal error; see the server log")
            await _send(send, *_runtime_error(failure))
            return
        if not 200 <= reply.status < 300:
            text = reply.body.decode("utf-8", errors="replace")
            await _send(send, 424, *_model_error(self.engine, name, reply.status, text))
        else:
            await _send(send, 200, *_success(reply))
        # OverheadLatency: the whole request, from its arrival to its answer sent, less the
        # model's part (SageMaker's definition).
        whole = (time.perf_counter_ns() - began) // 1000
        self.engine.endpoint_metrics.record(
            name,
            reply.variant,
            reply.instance,
            reply.status,
            reply.model_microseconds,
            max(whole - reply.model_microseconds, 0),
            reply.variant_instances,
        )

    def _not_serving(self, name: str) -> None:
        """Why an endpoint has no route: say what the user can do about it."""
        record = self.engine.metadata.resource(ENDPOINTS, name)
        settings = self.engine.settings
        if record is None:
            raise NotFoundError(f"Endpoint {name} of account {settings.account_id} not found.")
        if record.status in _COMING:
            raise ModelNotReady(
                f"Endpoint {name} is {record.status}: it takes invocations once it is "
                "InService; retry then (the waiter endpoint_in_service waits for it)"
            )
        if record.status != EndpointStatus.IN_SERVICE:
            raise ValidationError(
                f"Endpoint {name} is {record.status}: it takes invocations only when InService"
            )


def _forwarded(raw: list[tuple[bytes, bytes]]) -> tuple[list[tuple[bytes, bytes]], str | None]:
    headers, target = [], None
    for key, value in raw:
        name = key.lower()
        if name in FORWARDED_HEADERS:
            headers.append((name, value))
        elif name == _TARGET_VARIANT:
            target = value.decode("latin-1")
    return headers, target


async def _read_body(scope: Scope, receive: Receive) -> bytes:
    too_large = ValidationError(
        f"Body must be at most {MAX_BODY} bytes (6 MB); for larger payloads use batch "
        "transform (CreateTransformJob)"
    )
    for key, value in scope["headers"]:
        if key == b"content-length" and value.isdigit() and int(value) > MAX_BODY:
            raise too_large
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ValidationError("the client went away before sending the whole body")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _success(reply: Reply) -> tuple[list[tuple[bytes, bytes]], bytes]:
    headers = [
        (b"x-amzn-invoked-production-variant", reply.variant.encode()),
        *reply.headers,
    ]
    if not any(name == b"content-type" for name, _ in reply.headers):
        headers.append((b"content-type", b"application/octet-stream"))
    return headers, reply.body


def _model_error(
    engine: Engine, name: str, status: int, text: str
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """A non-2xx answer of the container, as SageMaker reports it: ModelError (424)."""
    settings = engine.settings
    kind = "client" if 400 <= status < 500 else "server"
    group = log_group(name)
    body = {
        "ErrorCode": f"{kind.upper()}_ERROR_FROM_MODEL",
        "Message": (
            f'Received {kind} error ({status}) from model with message "{text[:512]}". '
            f"See the log group {group} (dockyard endpoints logs {name}) for more information."
        ),
        "OriginalStatusCode": status,
        "OriginalMessage": text[:4096],
        "LogStreamArn": f"arn:aws:logs:{settings.region}:{settings.account_id}:log-group:{group}",
    }
    return _error_headers("ModelError"), json.dumps(body).encode()


def _runtime_error(exc: DockyardError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    # The runtime API names client errors ValidationError, not ValidationException.
    code = "ValidationError" if exc.code == "ValidationException" else exc.code
    body = json.dumps({"message": exc.message}).encode()
    return exc.http_status, _error_headers(code), body


def _error_headers(code: str) -> list[tuple[bytes, bytes]]:
    return [(b"x-amzn-errortype", code.encode()), (b"content-type", b"application/json")]


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    start: Message = {
        "type": "http.response.start",
        "status": status,
        "headers": [
            *headers,
            (b"content-length", str(len(body)).encode()),
            (b"x-amzn-requestid", str(uuid.uuid4()).encode()),
        ],
    }
    await send(start)
    await send({"type": "http.response.body", "body": body})
