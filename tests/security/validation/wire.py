"""Signed requests to dockyard's APIs (in-process through ASGI, or over HTTP) and their answers
read by botocore's own parsers, so an error counts as AWS-shaped only if botocore reads it."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.loaders import create_loader
from botocore.model import OperationModel, ServiceModel
from botocore.parsers import JSONParser, RestJSONParser

from dockyard.api.json_apis import LOGS_TARGET, SAGEMAKER_TARGET

T = TypeVar("T")
REGION = "us-east-1"
JSON_11 = "application/x-amz-json-1.1"
TARGETS = {"sagemaker": SAGEMAKER_TARGET, "logs": LOGS_TARGET}


@functools.cache
def service_model(name: str) -> ServiceModel:
    """botocore's model, loaded here rather than through dockyard, so these helpers also run
    against code that predates dockyard's own loader (to see a test fail on the old code)."""
    return ServiceModel(create_loader().load_service_model(name, "service-2"), name)


def operation_model(service: str, operation: str) -> OperationModel:
    return service_model(service).operation_model(operation)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    parsed: dict[str, Any]  # botocore's reading: the output, or {"Error": {...}}

    @property
    def code(self) -> str:
        return str(self.parsed.get("Error", {}).get("Code", ""))

    @property
    def message(self) -> str:
        return str(self.parsed.get("Error", {}).get("Message", ""))


def signed_headers(
    credentials: Credentials,
    service: str,
    method: str,
    url: str,
    body: Any,
    headers: dict[str, str],
) -> dict[str, str]:
    """`headers` plus SigV4 by botocore's own signer (`body`: bytes or a seekable file): the
    one way every test request is signed."""
    request = AWSRequest(method=method, url=url, data=body, headers=headers)
    SigV4Auth(credentials, service_model(service).signing_name, REGION).add_auth(request)
    return dict(request.headers.items())


def control_plane_request(
    credentials: Credentials, base_url: str, service: str, operation: str, body: bytes
) -> tuple[str, dict[str, str]]:
    url = base_url.rstrip("/") + "/"
    headers = {"X-Amz-Target": f"{TARGETS[service]}.{operation}", "Content-Type": JSON_11}
    return url, signed_headers(credentials, service, "POST", url, body, headers)


def invoke_request(
    credentials: Credentials,
    base_url: str,
    endpoint: str,
    body: bytes,
    headers: dict[str, str],
) -> tuple[str, dict[str, str]]:
    name = quote(endpoint.encode("utf-8", "surrogatepass"), safe="")
    url = f"{base_url.rstrip('/')}/endpoints/{name}/invocations"
    return url, signed_headers(credentials, "sagemaker-runtime", "POST", url, body, headers)


def read_answer(service: str, operation: str, response: httpx.Response) -> Answer:
    """Parse `response` as botocore would for `operation`, and check its shape: errors carry a
    code and a message (JSON 1.1: `__type` and `message` in the body; rest-json: the
    x-amzn-ErrorType header and a JSON body)."""
    model = operation_model(service, operation)
    raw = {
        "status_code": response.status_code,
        "headers": dict(response.headers),
        "body": response.content,
    }
    parser = RestJSONParser() if model.service_model.protocol == "rest-json" else JSONParser()
    parsed = parser.parse(raw, model.output_shape)
    answer = Answer(response.status_code, dict(response.headers), response.content, parsed)
    if response.status_code >= 300:
        assert answer.code and answer.message, (response.status_code, response.content[:300])
        if model.service_model.protocol == "json":
            document = json.loads(response.content)
            assert document["__type"] == answer.code, document
            assert document["message"], document
        else:
            assert response.headers["x-amzn-errortype"] == answer.code
            document = json.loads(response.content)
            # ModelError's modeled member is `Message`; the other errors say `message`.
            assert document.get("message") or document.get("Message"), document
    return answer


class Api:
    """Signed calls to one dockyard, in-process (`httpx.ASGITransport(app)`) or over HTTP
    (`base_url` of a running server), from synchronous test code."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        app: Any = None,
        base_url: str = "http://dockyard.test",
    ) -> None:
        self.credentials = credentials
        self.base_url = base_url
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=app) if app is not None else None
        self.client = httpx.AsyncClient(transport=transport, base_url=base_url, timeout=120)

    def run(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(work)

    async def send(self, service: str, operation: str, body: bytes | dict[str, Any]) -> Answer:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        url, headers = control_plane_request(
            self.credentials, self.base_url, service, operation, raw
        )
        response = await self.client.post(url, content=raw, headers=headers)
        return read_answer(service, operation, response)

    async def send_invoke(self, endpoint: str, body: bytes, headers: dict[str, str]) -> Answer:
        url, signed = invoke_request(self.credentials, self.base_url, endpoint, body, headers)
        # Header bytes as given (latin-1), so values a client could send but not type are sent.
        raw_headers = {k: v.encode("latin-1") for k, v in signed.items()}
        response = await self.client.post(url, content=body, headers=raw_headers)
        return read_answer("sagemaker-runtime", "InvokeEndpoint", response)

    def call(self, service: str, operation: str, body: bytes | dict[str, Any]) -> Answer:
        return self.run(self.send(service, operation, body))

    def sagemaker(self, operation: str, body: bytes | dict[str, Any]) -> Answer:
        return self.call("sagemaker", operation, body)

    def logs(self, operation: str, body: bytes | dict[str, Any]) -> Answer:
        return self.call("logs", operation, body)

    def invoke(self, endpoint: str, body: bytes, headers: dict[str, str]) -> Answer:
        return self.run(self.send_invoke(endpoint, body, headers))

    def gather(self, calls: Sequence[Awaitable[T]]) -> list[T]:
        async def together() -> list[T]:
            return list(await asyncio.gather(*calls))

        return self.run(together())

    def close(self) -> None:
        # Requests a failed test left running are cancelled first: their worker threads
        # (anyio's, not daemons) would otherwise keep the test process from exiting.
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.run(asyncio.wait(pending))
        self.run(self.client.aclose())
        self.loop.close()
