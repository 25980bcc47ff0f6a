"""The S3 API's ASGI app: which operation a request is, read from botocore's S3 model (method,
URI template, the query and header members it requires), then the operation's handler, with
every error answered as S3's XML."""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote

import botocore.session
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from dockyard.api.s3 import buckets, multipart, objects
from dockyard.api.s3.call import S3Call
from dockyard.api.s3.staging import Staging
from dockyard.api.s3.wire import S3Error, error_response, from_dockyard
from dockyard.api.sigv4 import AuthError
from dockyard.contract.errors import DockyardError
from dockyard.storage.objects import ObjectStore

log = logging.getLogger(__name__)

Handler = Callable[[S3Call], Awaitable[Response]]

# The operations dockyard serves, by botocore's names.
HANDLERS: dict[str, Handler] = {
    "ListBuckets": buckets.list_buckets,
    "CreateBucket": buckets.create_bucket,
    "HeadBucket": buckets.head_bucket,
    "DeleteBucket": buckets.delete_bucket,
    "ListObjectsV2": buckets.list_objects_v2,
    "ListObjects": buckets.list_objects,
    "PutObject": objects.put_object,
    "GetObject": objects.get_object,
    "HeadObject": objects.head_object,
    "DeleteObject": objects.delete_object,
    "DeleteObjects": objects.delete_objects,
    "CopyObject": objects.copy_object,
    "CreateMultipartUpload": multipart.create_multipart_upload,
    "UploadPart": multipart.upload_part,
    "UploadPartCopy": multipart.upload_part_copy,
    "CompleteMultipartUpload": multipart.complete_multipart_upload,
    "AbortMultipartUpload": multipart.abort_multipart_upload,
    "ListParts": multipart.list_parts,
    "ListMultipartUploads": multipart.list_multipart_uploads,
}
# Virtual-host addressing: `<bucket>.localhost[:port]` (names under .localhost resolve to the
# loopback address by RFC 6761; clients that resolve them reach this server).
VIRTUAL_HOST_SUFFIX = ".localhost"
DRAIN_BYTES = 8 * 1024 * 1024  # an unread body up to this is read before an early answer


@dataclass(frozen=True)
class OperationShape:
    """What tells one S3 operation's requests apart, from its botocore model."""

    name: str
    method: str
    level: int  # 0: the service (/), 1: a bucket, 2: an object
    query: tuple[str, ...]  # query parameters it requires (literal in its URI, or members)
    headers: tuple[str, ...]  # headers it requires (x-amz-copy-source)

    def matches(self, method: str, level: int, query: Mapping[str, str], headers: set[str]) -> bool:
        return (
            self.method == method
            and self.level == level
            and all(name in query for name in self.query)
            and all(name in headers for name in self.headers)
        )

    @property
    def specificity(self) -> int:
        return len(self.query) + len(self.headers)


@functools.cache
def operation_shapes() -> tuple[OperationShape, ...]:
    """Every operation of botocore's S3 model, most specific first (UploadPartCopy before
    UploadPart before PutObject)."""
    model = botocore.session.get_session().get_service_model("s3")
    shapes = []
    for name in model.operation_names:
        operation = model.operation_model(name)
        path, _, literal = operation.http["requestUri"].partition("?")
        level = 0 if path == "/" else 1 if "{Key+}" not in path else 2
        query = [
            part.partition("=")[0]
            for part in literal.split("&")
            if part and not part.startswith("x-id")
        ]
        headers = []
        if operation.input_shape is not None:
            for member in operation.input_shape.required_members:
                location = operation.input_shape.members[member].serialization
                if location.get("location") == "querystring":
                    query.append(location["name"])
                elif location.get("location") == "header":
                    headers.append(location["name"].lower())
        method = operation.http["method"]
        shapes.append(OperationShape(name, method, level, tuple(query), tuple(headers)))
    # On a tie (ListBuckets and ListDirectoryBuckets are both GET /), an operation served wins.
    return tuple(sorted(shapes, key=lambda shape: (-shape.specificity, shape.name not in HANDLERS)))


@functools.cache
def takes_body(name: str) -> bool:
    """Whether botocore's model gives the operation a request body (a payload member)."""
    model = botocore.session.get_session().get_service_model("s3")
    input_shape = model.operation_model(name).input_shape
    return input_shape is not None and "payload" in input_shape.serialization


@functools.cache
def _shapes_by_route() -> dict[tuple[str, int], tuple[OperationShape, ...]]:
    """operation_shapes by method and level, in the same order: a request is matched against
    the few of its method and level, not all ~100."""
    routes: dict[tuple[str, int], list[OperationShape]] = {}
    for shape in operation_shapes():
        routes.setdefault((shape.method, shape.level), []).append(shape)
    return {route: tuple(shapes) for route, shapes in routes.items()}


def find_operation(
    method: str, level: int, query: Mapping[str, str], headers: set[str]
) -> str | None:
    for shape in _shapes_by_route().get((method, level), ()):
        if shape.matches(method, level, query, headers):
            return shape.name
    return None


def address(scope: Scope, host: str) -> tuple[str, str]:
    """The bucket and key a request addresses: path-style `/<bucket>/<key>`, or virtual-host
    style `<bucket>.localhost` with the key as the path. Taken from the raw path, so an
    encoded `/` stays in the key."""
    raw = scope.get("raw_path") or scope["path"].encode()
    path = unquote(raw.decode("latin-1"), errors="surrogateescape")
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if hostname.endswith(VIRTUAL_HOST_SUFFIX) and hostname != VIRTUAL_HOST_SUFFIX[1:]:
        return hostname[: -len(VIRTUAL_HOST_SUFFIX)], path[1:]
    bucket, _, key = path[1:].partition("/")
    return bucket, key


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length", "0").strip()
    return "transfer-encoding" in request.headers or length not in ("", "0")


class S3App:
    """S3's REST-XML API over `store`; bodies pass through `staging`."""

    def __init__(self, store: ObjectStore, staging: Staging) -> None:
        self.store = store
        self.staging = staging
        _shapes_by_route()  # loaded now, not on the first request

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body_read = False

        async def receive_body() -> Message:
            nonlocal body_read
            message = await receive()
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_read = True
            return message

        request = Request(scope, receive_body)
        method = scope["method"]
        bucket, key = address(scope, request.headers.get("host", ""))
        resource = f"/{bucket}/{key}" if key else f"/{bucket}"
        try:
            response = await self._dispatch(request, method, bucket, key)
        except AuthError:
            raise  # the SigV4 middleware answers it (the body did not match its signature)
        except S3Error as error:
            response = error_response(error, resource=resource, head=method == "HEAD")
        except DockyardError as error:
            s3_error = from_dockyard(error)
            if s3_error is None:
                log.error("S3 %s %s failed", method, resource, exc_info=error)
                s3_error = S3Error("InternalError", error.message, 500)
            response = error_response(s3_error, resource=resource, head=method == "HEAD")
        except Exception as error:
            log.error("internal error serving S3 %s %s", method, resource, exc_info=error)
            s3_error = S3Error(
                "InternalError", "dockyard hit an internal error; see the server log", 500
            )
            response = error_response(s3_error, resource=resource, head=method == "HEAD")
        if not body_read and _has_body(request):
            # Answered without taking the body (an error, usually). A small body is read and
            # dropped, so the client, still sending it, gets the answer (a socket closed on
            # unread bytes is reset, and the answer lost with it); a larger one is not waited
            # for: the connection closes, so its bytes are never read as the next request.
            drained = 0
            while not body_read and drained <= DRAIN_BYTES:
                message = await receive_body()
                drained += len(message.get("body", b""))
            if not body_read:
                response.headers["connection"] = "close"
        await response(scope, receive_body, send)

    async def _dispatch(self, request: Request, method: str, bucket: str, key: str) -> Response:
        query = dict(parse_qsl(request.url.query, keep_blank_values=True))
        level = 0 if not bucket else 1 if not key else 2
        headers = set(request.headers.keys())
        name = find_operation(method, level, query, headers)
        handler = HANDLERS.get(name or "")
        if handler is None:
            raise S3Error(
                "NotImplemented",
                f"{name or f'{method} {request.url.path}'} is not an S3 operation dockyard "
                f"serves; it serves {', '.join(sorted(HANDLERS))}",
                400,  # not S3's 501: a request dockyard cannot serve is the client's to change
            )
        call = S3Call(request, bucket, key, self.store, self.staging)
        if _has_body(request) and not takes_body(name or ""):
            # A body the operation has no use for is still read (bounded) before it runs: the
            # signature covers it, and an operation runs only once its request has checked out.
            await call.small_body()
        return await handler(call)
