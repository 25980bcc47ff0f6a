"""One S3 request as the operations see it: the bucket and key it addresses, its query and
headers, its body as a stream, and the store and staging folder it works on."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from dockyard.api.s3.staging import CHECKSUM_PREFIX, Staging
from dockyard.api.s3.wire import S3Error
from dockyard.storage.objects import ObjectStore

T = TypeVar("T")
MAX_XML_BYTES = 4 * 1024 * 1024  # DeleteObjects (1,000 keys) and Complete (10,000 parts) fit


@dataclass
class S3Call:
    request: Request
    bucket: str
    key: str
    store: ObjectStore
    staging: Staging

    @property
    def query(self) -> dict[str, str]:
        return dict(self.request.query_params)

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name)

    @property
    def resource(self) -> str:
        return f"/{self.bucket}/{self.key}" if self.key else f"/{self.bucket}"

    async def run(self, function: Callable[..., T], *args: object) -> T:
        """Store calls block (files, or boto3 for a remote store): off the event loop."""
        return await run_in_threadpool(function, *args)

    def body(self) -> AsyncIterator[bytes]:
        return self.request.stream()

    async def small_body(self) -> bytes:
        """An XML request body, bounded (it is parsed in memory)."""
        data = bytearray()
        async for chunk in self.request.stream():
            data += chunk
            if len(data) > MAX_XML_BYTES:
                raise S3Error(
                    "MaxMessageLengthExceeded",
                    f"Your request was too big: this operation's XML body is limited to "
                    f"{MAX_XML_BYTES} bytes",
                )
        return bytes(data)

    def claimed_checksums(self) -> dict[str, str]:
        """x-amz-checksum-<algorithm> values the client sent, in headers or (aws-chunked)
        trailers; call after the body is read, when trailers are in."""
        claimed = {
            name: value
            for name, value in self.request.headers.items()
            if name.startswith(CHECKSUM_PREFIX)
            and name not in ("x-amz-checksum-type",)
            and name != "x-amz-checksum-algorithm"
        }
        trailers = self.request.scope.get("dockyard.trailers") or {}
        claimed.update(
            (name, value) for name, value in trailers.items() if name.startswith(CHECKSUM_PREFIX)
        )
        return claimed

    def announced_checksums(self) -> list[str]:
        """The algorithms whose checksums the client will send (headers, or a trailer named by
        x-amz-trailer), known before the body is read."""
        names = [
            name
            for name in self.request.headers
            if name.startswith(CHECKSUM_PREFIX)
            and name not in ("x-amz-checksum-type", "x-amz-checksum-algorithm")
        ]
        names += [
            name.strip().lower()
            for name in (self.header("x-amz-trailer") or "").split(",")
            if name.strip().lower().startswith(CHECKSUM_PREFIX)
        ]
        return [name.removeprefix(CHECKSUM_PREFIX) for name in names]
