"""The client's floor for S3: a stand-in server, run as `python s3_floor.py PORT`, that takes S3
uploads (PutObject and multipart) and throws their bodies away, keeping only each object's size,
and answers HeadObject and GetObject (whole or a range) with pre-made bytes of that size. What
boto3 reaches against it is the most any S3 server can reach with boto3 on this machine."""

from __future__ import annotations

import base64
import functools
import itertools
import re
import sys
import zlib
from typing import Any
from urllib.parse import parse_qs

import uvicorn

MIB = 1024 * 1024
PIECE_BYTES = 8 * MIB  # boto3's ranged GETs ask for 8 MiB: one send each
LAST_MODIFIED = b"Wed, 02 Dec 2026 00:00:00 GMT"
ETAG = b'"00000000000000000000000000000000"'
_RANGE = re.compile(rb"bytes=(\d+)-(\d*)")
_upload_ids = itertools.count(1)
sizes: dict[str, int] = {}  # object path -> size
uploads: dict[str, dict[int, int]] = {}  # upload id -> part number -> size


@functools.cache
def premade(length: int) -> bytes:
    """`length` bytes (at most PIECE_BYTES), made once per length so a GET copies nothing."""
    return bytes(range(256)) * (length // 256) + bytes(range(length % 256))


@functools.cache
def crc32_of_whole(size: int) -> bytes:
    """The base64 CRC32 of an object of `size` pre-made bytes, as GetObject returns it."""
    crc = 0
    for start in range(0, size, PIECE_BYTES):
        crc = zlib.crc32(premade(min(PIECE_BYTES, size - start)), crc)
    return base64.b64encode(crc.to_bytes(4, "big"))


def _xml(tag: str, inner: str) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?><{tag}>{inner}</{tag}>'.encode()


async def _body_size(receive: Any) -> int:
    """Read and drop the request's body; its length."""
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    return size


async def _answer(send: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _get(scope: dict[str, Any], send: Any, size: int) -> None:
    request_headers = dict(scope["headers"])
    first, last, status = 0, size - 1, 200
    headers = [
        (b"etag", ETAG),
        (b"last-modified", LAST_MODIFIED),
        (b"accept-ranges", b"bytes"),
        (b"content-type", b"binary/octet-stream"),
    ]
    match = _RANGE.fullmatch(request_headers.get(b"range", b""))
    if match is not None:
        first = int(match[1])
        last = min(int(match[2]), size - 1) if match[2] else size - 1
        status = 206
        headers.append((b"content-range", f"bytes {first}-{last}/{size}".encode()))
    elif request_headers.get(b"x-amz-checksum-mode") == b"ENABLED":
        # As S3 does for an object put with a checksum: boto3 then checks it, as it would
        # against dockyard.
        headers.append((b"x-amz-checksum-crc32", crc32_of_whole(size)))
    length = last - first + 1
    headers.append((b"content-length", str(length).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    if scope["method"] == "HEAD":
        await send({"type": "http.response.body", "body": b""})
        return
    for start in range(0, length, PIECE_BYTES):
        piece = min(PIECE_BYTES, length - start)
        more = start + piece < length
        await send({"type": "http.response.body", "body": premade(piece), "more_body": more})


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    path, method = scope["path"], scope["method"]
    query = parse_qs(scope.get("query_string", b"").decode(), keep_blank_values=True)
    received = await _body_size(receive)
    if path == "/healthz":
        await _answer(send, 200, [], b"")
    elif method in ("GET", "HEAD") and path in sizes:
        await _get(scope, send, sizes[path])
    elif method in ("GET", "HEAD"):
        await _answer(send, 404, [], _xml("Error", "<Code>NoSuchKey</Code>"))
    elif method == "POST" and "uploads" in query:
        upload_id = str(next(_upload_ids))
        uploads[upload_id] = {}
        inner = f"<Bucket>bench</Bucket><Key>k</Key><UploadId>{upload_id}</UploadId>"
        await _answer(send, 200, [], _xml("InitiateMultipartUploadResult", inner))
    elif method == "POST" and "uploadId" in query:
        sizes[path] = sum(uploads.pop(query["uploadId"][0], {}).values())
        inner = f'<ETag>{ETAG.decode()[:-1]}-1"</ETag>'
        await _answer(send, 200, [], _xml("CompleteMultipartUploadResult", inner))
    elif method == "PUT" and "uploadId" in query:
        uploads[query["uploadId"][0]][int(query["partNumber"][0])] = received
        await _answer(send, 200, [(b"etag", ETAG)], b"")
    else:  # PutObject (or CreateBucket, harmlessly recorded as an empty object)
        sizes[path] = received
        await _answer(send, 200, [(b"etag", ETAG)], b"")


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
