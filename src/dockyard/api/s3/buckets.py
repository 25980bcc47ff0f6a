"""S3's bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, ListObjectsV2."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import quote

from starlette.responses import Response

from dockyard.api.s3.call import S3Call
from dockyard.api.s3.wire import S3Error, element, request_id_headers, root, timestamp, xml_response
from dockyard.contract.errors import NoSuchBucket, ValidationError
from dockyard.storage.objects import ObjectInfo, ObjectStore, validate_bucket

MAX_KEYS = 1000
OWNER_ID = "dockyard"


def _check_bucket_name(bucket: str) -> None:
    try:
        validate_bucket(bucket)
    except ValidationError as exc:
        raise S3Error("InvalidBucketName", exc.message) from None


async def list_buckets(call: S3Call) -> Response:
    names = await call.run(call.store.list_buckets)
    # The store keeps no creation time; every bucket reports the time of the listing.
    now = timestamp(datetime.now(UTC))
    document = root("ListAllMyBucketsResult")
    owner = element(document, "Owner")
    element(owner, "ID", OWNER_ID)
    element(owner, "DisplayName", OWNER_ID)
    buckets = element(document, "Buckets")
    for name in names:
        bucket = element(buckets, "Bucket")
        element(bucket, "Name", name)
        element(bucket, "CreationDate", now)
    return xml_response(document)


async def create_bucket(call: S3Call) -> Response:
    _check_bucket_name(call.bucket)
    await call.small_body()  # CreateBucketConfiguration: the region is this server's anyway
    # As in us-east-1, creating a bucket you already own succeeds.
    await call.run(call.store.create_bucket, call.bucket)
    return Response(b"", 200, {**request_id_headers(), "Location": f"/{call.bucket}"})


async def head_bucket(call: S3Call) -> Response:
    _check_bucket_name(call.bucket)
    if not await call.run(call.store.bucket_exists, call.bucket):
        raise NoSuchBucket(f"bucket {call.bucket!r} does not exist")
    return Response(b"", 200, {**request_id_headers(), "x-amz-bucket-region": "us-east-1"})


async def delete_bucket(call: S3Call) -> Response:
    _check_bucket_name(call.bucket)
    await call.run(call.store.delete_bucket, call.bucket)
    return Response(b"", 204, request_id_headers())


# -- ListObjectsV2 ---------------------------------------------------------------------------


def _token(last: str, is_prefix: bool) -> str:
    return base64.urlsafe_b64encode(json.dumps([last, is_prefix]).encode()).decode()


def _read_token(token: str) -> tuple[str, bool]:
    try:
        last, is_prefix = json.loads(base64.urlsafe_b64decode(token.encode()))
        if isinstance(last, str) and isinstance(is_prefix, bool):
            return last, is_prefix
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        pass
    raise S3Error("InvalidArgument", "The continuation token provided is incorrect")


def _max_keys(text: str | None) -> int:
    if text is None:
        return MAX_KEYS
    if not text.isascii() or not text.isdigit():
        raise S3Error("InvalidArgument", f"max-keys must be a number from 0, not {text[:20]!r}")
    return min(int(text), MAX_KEYS)


def _entries(
    objects: Iterator[ObjectInfo], prefix: str, delimiter: str, after: str, after_prefix: bool
) -> Iterator[tuple[str, ObjectInfo | None]]:
    """Keys and common prefixes (info None) in order, each once, after the marker."""
    last_prefix = None
    for info in objects:
        key = info.key
        if key <= after or (after_prefix and key.startswith(after)):
            continue
        if delimiter:
            cut = key.find(delimiter, len(prefix))
            if cut >= 0:
                common = key[: cut + len(delimiter)]
                if common != last_prefix:
                    last_prefix = common
                    yield common, None
                continue
        yield key, info


def _listing(store: ObjectStore, bucket: str, prefix: str) -> Iterator[ObjectInfo]:
    try:
        return store.list_objects(bucket, prefix)
    except ValidationError:
        # A prefix that can name no key in this store (`a//`, `../`) has nothing under it.
        if not store.bucket_exists(bucket):
            raise
        return iter(())


def _page(
    store: ObjectStore,
    bucket: str,
    prefix: str,
    delimiter: str,
    after: str,
    after_prefix: bool,
    max_keys: int,
) -> tuple[list[tuple[str, ObjectInfo | None]], bool]:
    entries = _entries(_listing(store, bucket, prefix), prefix, delimiter, after, after_prefix)
    page: list[tuple[str, ObjectInfo | None]] = []
    for entry in entries:
        if len(page) == max_keys:
            return page, True
        page.append(entry)
    return page, False


async def list_objects_v2(call: S3Call) -> Response:
    query = call.query
    prefix = query.get("prefix", "")
    delimiter = query.get("delimiter", "")
    max_keys = _max_keys(query.get("max-keys"))
    encoding = query.get("encoding-type")
    if encoding not in (None, "url"):
        raise S3Error("InvalidArgument", f"Invalid Encoding Method specified: {encoding}")
    start_after = query.get("start-after", "")
    token = query.get("continuation-token")
    after, after_prefix = _read_token(token) if token is not None else (start_after, False)
    page, truncated = await call.run(
        _page, call.store, call.bucket, prefix, delimiter, after, after_prefix, max_keys
    )

    def text(value: str) -> str:
        return quote(value, safe="/") if encoding == "url" else value

    document = root("ListBucketResult")
    element(document, "Name", call.bucket)
    element(document, "Prefix", text(prefix))
    if delimiter:
        element(document, "Delimiter", text(delimiter))
    element(document, "MaxKeys", max_keys)
    element(document, "KeyCount", len(page))
    element(document, "IsTruncated", "true" if truncated else "false")
    if encoding:
        element(document, "EncodingType", encoding)
    if token is not None:
        element(document, "ContinuationToken", token)
    if start_after:
        element(document, "StartAfter", text(start_after))
    if truncated and page:
        name, info = page[-1]
        element(document, "NextContinuationToken", _token(name, info is None))
    fetch_owner = query.get("fetch-owner") == "true"
    for name, info in page:
        if info is None:
            element(element(document, "CommonPrefixes"), "Prefix", text(name))
            continue
        contents = element(document, "Contents")
        element(contents, "Key", text(name))
        element(contents, "LastModified", timestamp(info.last_modified))
        element(contents, "ETag", info.etag)
        element(contents, "Size", info.size)
        element(contents, "StorageClass", "STANDARD")
        if fetch_owner:
            owner = element(contents, "Owner")
            element(owner, "ID", OWNER_ID)
            element(owner, "DisplayName", OWNER_ID)
    return xml_response(document)
