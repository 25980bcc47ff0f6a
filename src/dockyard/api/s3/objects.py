"""S3's object operations: PutObject, GetObject (Range), HeadObject, DeleteObject,
DeleteObjects, CopyObject."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote

from starlette.responses import Response

from dockyard.api.s3.call import S3Call
from dockyard.api.s3.file_response import FileSpanResponse
from dockyard.api.s3.staging import (
    Spooled,
    checksum_of,
    verify_checksums,
    verify_content_md5,
)
from dockyard.api.s3.wire import (
    S3Error,
    element,
    http_date,
    parse_request_xml,
    request_id_headers,
    root,
    timestamp,
    xml_response,
    xml_tag,
)
from dockyard.contract.errors import DockyardError
from dockyard.storage.objects import ObjectAttributes, ObjectInfo, ObjectStore, validate_key

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
MAX_DELETE_KEYS = 1000
CONTENT_TYPE = "binary/octet-stream"  # S3's, for an object written without one
META_PREFIX = "x-amz-meta-"
MAX_METADATA_BYTES = 2048  # S3's limit for user metadata


def check_key(key: str) -> None:
    if not key:
        raise S3Error("InvalidArgument", "This operation needs an object key: /<bucket>/<key>")
    if len(key.encode("utf-8", "surrogatepass")) > 1024:
        raise S3Error("KeyTooLongError", "Your key is too long (the limit is 1024 bytes)")
    validate_key(key)  # ValidationError (InvalidArgument) for what no store here can hold


def object_headers(info: ObjectInfo, *, checksums: bool = False) -> dict[str, str]:
    """GetObject's and HeadObject's headers; `checksums`: the whole object's x-amz-checksum-*
    too (asked with x-amz-checksum-mode: ENABLED, and never for a range)."""
    attributes = info.attributes
    headers = {
        **request_id_headers(),
        "ETag": info.etag,
        "Last-Modified": http_date(info.last_modified),
        "Accept-Ranges": "bytes",
        "Content-Type": attributes.content_type or CONTENT_TYPE,
    }
    headers.update((META_PREFIX + name, value) for name, value in attributes.metadata.items())
    if checksums and attributes.checksums:
        headers.update(attributes.checksums)
        composite = any("-" in value for value in attributes.checksums.values())
        headers["x-amz-checksum-type"] = "COMPOSITE" if composite else "FULL_OBJECT"
    return headers


def request_attributes(call: S3Call) -> ObjectAttributes:
    """The Content-Type and x-amz-meta-* a write sent (S3 keeps them with the object)."""
    metadata = {
        name.removeprefix(META_PREFIX): value
        for name, value in call.request.headers.items()
        if name.startswith(META_PREFIX)
    }
    size = sum(len(name) + len(value) for name, value in metadata.items())
    if size > MAX_METADATA_BYTES:
        raise S3Error(
            "MetadataTooLarge",
            f"Your metadata headers are {size} bytes; the limit is {MAX_METADATA_BYTES} "
            "(names and values of all x-amz-meta-* headers together)",
        )
    return ObjectAttributes(call.header("content-type"), metadata)


# -- writing -------------------------------------------------------------------------------


async def spool_body(call: S3Call, dest: Path) -> Spooled:
    """The request's body on disk at `dest`, checked against every digest the client sent."""
    algorithms = call.announced_checksums()
    for name in algorithms:
        checksum_of(name)  # an algorithm we cannot check is refused before the body is read
    spooled = await call.staging.spool(call.body(), dest, checksum_algorithms=algorithms)
    try:
        verify_content_md5(spooled, call.header("content-md5"))
        verify_checksums(spooled, call.claimed_checksums())
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return spooled


async def install(
    call: S3Call, spooled: Spooled, bucket: str, key: str, attributes: ObjectAttributes
) -> None:
    """Move a spooled body into the store as the object: it appears whole, or not at all."""
    try:
        await call.run(_put, call.store, bucket, key, spooled, attributes)
    finally:
        spooled.path.unlink(missing_ok=True)  # moved already, unless the store refused it


def _put(
    store: ObjectStore, bucket: str, key: str, spooled: Spooled, attributes: ObjectAttributes
) -> None:
    store.put_file(bucket, key, spooled.path, move=True, etag=spooled.etag, attributes=attributes)


async def put_object(call: S3Call) -> Response:
    check_key(call.key)
    attributes = request_attributes(call)
    # Fail before taking the body when there is nowhere to put it.
    if not await call.run(call.store.bucket_exists, call.bucket):
        raise no_such_bucket(call.bucket)
    spooled = await spool_body(call, call.staging.temp_path("put"))
    # The checksums the client sent, checked: GetObject returns them when asked.
    attributes = replace(attributes, checksums=spooled.checksums)
    etag = await install_spooled(call, spooled, call.bucket, call.key, attributes)
    return Response(b"", 200, {**request_id_headers(), "ETag": etag, **spooled.checksums})


async def install_spooled(
    call: S3Call, spooled: Spooled, bucket: str, key: str, attributes: ObjectAttributes
) -> str:
    await install(call, spooled, bucket, key, attributes)
    # A remote store computes its own ETag (its multipart uploads make `-N` ones).
    info = await call.run(call.store.head, bucket, key) if _remote(call.store) else None
    return info.etag if info is not None else spooled.etag


def _remote(store: ObjectStore) -> bool:
    return type(store).open_object is ObjectStore.open_object


def no_such_bucket(bucket: str) -> S3Error:
    return S3Error("NoSuchBucket", f"The specified bucket {bucket!r} does not exist", 404)


# -- reading -------------------------------------------------------------------------------


@dataclass
class _Opened:
    source: BinaryIO
    info: ObjectInfo
    temp: Path | None  # a remote object's local copy, removed once read


async def _open(call: S3Call, bucket: str, key: str) -> _Opened:
    opened = await call.run(call.store.open_object, bucket, key)
    if opened is not None:
        return _Opened(opened[0], opened[1], None)
    # A remote store: fetch the whole object first (streaming straight from the remote store
    # through this server is a later step).
    info = await call.run(call.store.head, bucket, key)
    temp = call.staging.temp_path("get")
    try:
        await call.run(call.store.get_file, bucket, key, temp)
        source = temp.open("rb")
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    temp.unlink()  # the open file lives on until closed
    return _Opened(source, info, None)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single `bytes=` range; None for the whole object. A range S3
    would ignore (malformed, several ranges) is ignored; one past the end is InvalidRange."""
    if header is None:
        return None
    match = _RANGE.match(header.strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # the last N bytes
        suffix = int(last_text)
        if suffix == 0:
            raise _invalid_range(size)
        return max(0, size - suffix), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if first >= size:
        raise _invalid_range(size)
    if last < first:
        return None
    return first, min(last, size - 1)


def _invalid_range(size: int) -> S3Error:
    return S3Error("InvalidRange", f"The requested range is not satisfiable (size {size})", 416)


def _preconditions(call: S3Call, info: ObjectInfo) -> int | None:
    """412 or 304 when If-Match / If-None-Match say so (s3transfer pins ranged GETs with
    If-Match, so a download never mixes two versions)."""
    if_match = call.header("if-match")
    if if_match is not None and if_match.strip() not in ("*", info.etag, info.etag.strip('"')):
        return 412
    if_none_match = call.header("if-none-match")
    if if_none_match is not None and if_none_match.strip() in ("*", info.etag):
        return 304
    return None


async def get_object(call: S3Call, *, head: bool = False) -> Response:
    check_key(call.key)
    opened = await _open(call, call.bucket, call.key)
    try:
        info = opened.info
        span = byte_range(call.header("range"), info.size)
        checksums = span is None and call.header("x-amz-checksum-mode") == "ENABLED"
        headers = object_headers(info, checksums=checksums)
        failed = _preconditions(call, info)
        if failed == 412:
            raise S3Error("PreconditionFailed", "At least one of the preconditions failed", 412)
        if failed == 304:
            opened.source.close()
            return Response(b"", 304, headers)
        if span is None:
            start, length, status = 0, info.size, 200
        else:
            start, length, status = span[0], span[1] - span[0] + 1, 206
            headers["Content-Range"] = f"bytes {span[0]}-{span[1]}/{info.size}"
        headers["Content-Length"] = str(length)
        if head:
            opened.source.close()
            return Response(b"", status, headers)
    except BaseException:
        opened.source.close()
        raise
    return FileSpanResponse(opened.source, start, length, status, headers)


async def head_object(call: S3Call) -> Response:
    return await get_object(call, head=True)


# -- deleting ------------------------------------------------------------------------------


async def delete_object(call: S3Call) -> Response:
    check_key(call.key)
    await call.run(call.store.delete, call.bucket, call.key)
    return Response(b"", 204, request_id_headers())


def _delete_keys(body: bytes) -> tuple[list[str], bool]:
    document = parse_request_xml(body)
    keys = [
        (node.findtext(xml_tag(document, "Key")) or "")
        for node in document.iter(xml_tag(document, "Object"))
    ]
    if not keys or len(keys) > MAX_DELETE_KEYS:
        raise S3Error(
            "MalformedXML", f"Delete must name 1 to {MAX_DELETE_KEYS} objects, not {len(keys)}"
        )
    quiet = (document.findtext(xml_tag(document, "Quiet")) or "").strip().lower() == "true"
    return keys, quiet


async def delete_objects(call: S3Call) -> Response:
    body = await call.small_body()
    if not await call.run(call.store.bucket_exists, call.bucket):
        raise no_such_bucket(call.bucket)
    _verify_small_body(call, body)
    keys, quiet = _delete_keys(body)
    document = root("DeleteResult")
    for key in keys:
        try:
            check_key(key)
            await call.run(call.store.delete, call.bucket, key)
        except (S3Error, DockyardError) as exc:
            failed = element(document, "Error")
            element(failed, "Key", key)
            element(failed, "Code", getattr(exc, "code", "InvalidArgument"))
            element(failed, "Message", getattr(exc, "message", str(exc)))
            continue
        if not quiet:
            element(element(document, "Deleted"), "Key", key)
    return xml_response(document)


def _verify_small_body(call: S3Call, body: bytes) -> None:
    """DeleteObjects must carry Content-MD5 or a checksum (botocore sends one); check it."""
    spooled = Spooled(Path(), len(body), _md5(body))
    for header in call.claimed_checksums():
        checksum = checksum_of(header.removeprefix("x-amz-checksum-"))
        checksum.update(body)
        spooled.checksums[header] = base64.b64encode(checksum.digest()).decode()
    verify_content_md5(spooled, call.header("content-md5"))
    verify_checksums(spooled, call.claimed_checksums())


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


# -- copying -------------------------------------------------------------------------------


def copy_source(call: S3Call) -> tuple[str, str]:
    """The bucket and key of x-amz-copy-source (`bucket/key` or `/bucket/key`, URL-encoded)."""
    text = unquote((call.header("x-amz-copy-source") or "").split("?", 1)[0]).lstrip("/")
    bucket, _, key = text.partition("/")
    if not bucket or not key:
        raise S3Error(
            "InvalidArgument",
            "x-amz-copy-source must name a bucket and a key: <bucket>/<key>",
        )
    return bucket, key


async def open_source(call: S3Call) -> _Opened:
    bucket, key = copy_source(call)
    check_key(key)
    opened = await _open(call, bucket, key)
    failed = _source_preconditions(call, opened.info)
    if failed:
        opened.source.close()
        raise S3Error("PreconditionFailed", "At least one of the preconditions failed", 412)
    return opened


def _source_preconditions(call: S3Call, info: ObjectInfo) -> bool:
    if_match = call.header("x-amz-copy-source-if-match")
    if if_match is not None and if_match.strip() not in (info.etag, info.etag.strip('"')):
        return True
    if_none_match = call.header("x-amz-copy-source-if-none-match")
    return if_none_match is not None and if_none_match.strip() in (info.etag, "*")


async def copy_object(call: S3Call) -> Response:
    check_key(call.key)
    directive = call.header("x-amz-metadata-directive") or "COPY"
    if directive not in ("COPY", "REPLACE"):
        raise S3Error(
            "InvalidArgument", f"Unknown metadata directive {directive[:20]!r}: COPY or REPLACE"
        )
    replaced = request_attributes(call) if directive == "REPLACE" else None
    if not await call.run(call.store.bucket_exists, call.bucket):
        raise no_such_bucket(call.bucket)
    opened = await open_source(call)
    with contextlib.closing(opened.source):
        spooled = await call.staging.spool_file(
            opened.source, call.staging.temp_path("copy"), opened.info.size
        )
    # The same bytes: the source's checksums hold for the copy too.
    kept = opened.info.attributes
    attributes = kept if replaced is None else replace(replaced, checksums=kept.checksums)
    etag = await install_spooled(call, spooled, call.bucket, call.key, attributes)
    document = root("CopyObjectResult")
    element(document, "LastModified", timestamp(datetime.now(UTC)))
    element(document, "ETag", etag)
    return xml_response(document)
