"""S3's bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, and listing a
bucket's objects, ListObjectsV2 and its first version, ListObjects (boto3's `Bucket.objects`
collections and the SageMaker SDK's S3Downloader.list use that one)."""

from __future__ import annotations

import base64
import binascii
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
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


# -- ListObjectsV2 and ListObjects ------------------------------------------------------------


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


def _listing_query(call: S3Call) -> tuple[str, str, int, str | None]:
    """The prefix, delimiter, max-keys and encoding-type both listings take."""
    query = call.query
    encoding = query.get("encoding-type")
    if encoding not in (None, "url"):
        raise S3Error("InvalidArgument", f"Invalid Encoding Method specified: {encoding}")
    return (
        query.get("prefix", ""),
        query.get("delimiter", ""),
        _max_keys(query.get("max-keys")),
        encoding,
    )


def _encoder(encoding: str | None) -> Callable[[str], str]:
    """Names as written in the listing: URL-encoded when the client asked (boto3 always does,
    and decodes them), so keys with control characters survive XML."""
    if encoding == "url":
        return lambda value: quote(value, safe="/")
    return lambda value: value


def _write_page(
    document: ET.Element,
    page: list[tuple[str, ObjectInfo | None]],
    text: Callable[[str], str],
    owner: bool,
) -> None:
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
        if owner:
            owner_element = element(contents, "Owner")
            element(owner_element, "ID", OWNER_ID)
            element(owner_element, "DisplayName", OWNER_ID)


async def list_objects_v2(call: S3Call) -> Response:
    prefix, delimiter, max_keys, encoding = _listing_query(call)
    start_after = call.query.get("start-after", "")
    token = call.query.get("continuation-token")
    after, after_prefix = _read_token(token) if token is not None else (start_after, False)
    page, truncated = await call.run(
        _page, call.store, call.bucket, prefix, delimiter, after, after_prefix, max_keys
    )
    text = _encoder(encoding)
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
    _write_page(document, page, text, owner=call.query.get("fetch-owner") == "true")
    return xml_response(document)


def _rolls_up(marker: str, prefix: str, delimiter: str) -> bool:
    """Whether a ListObjects marker is a common prefix (`dir/` under the delimiter `/`), as the
    NextMarker of a page that ended on one is: the next page starts after every key under it."""
    if not delimiter or not marker.startswith(prefix) or not marker.endswith(delimiter):
        return False
    return marker.find(delimiter, len(prefix)) == len(marker) - len(delimiter)


async def list_objects(call: S3Call) -> Response:
    """ListObjects, the first version: a `marker` (a key, or a common prefix) where v2 has a
    continuation token, and Owner in every entry."""
    prefix, delimiter, max_keys, encoding = _listing_query(call)
    marker = call.query.get("marker", "")
    page, truncated = await call.run(
        _page,
        call.store,
        call.bucket,
        prefix,
        delimiter,
        marker,
        _rolls_up(marker, prefix, delimiter),
        max_keys,
    )
    text = _encoder(encoding)
    document = root("ListBucketResult")
    element(document, "Name", call.bucket)
    element(document, "Prefix", text(prefix))
    element(document, "Marker", text(marker))
    element(document, "MaxKeys", max_keys)
    if delimiter:
        element(document, "Delimiter", text(delimiter))
    element(document, "IsTruncated", "true" if truncated else "false")
    if encoding:
        element(document, "EncodingType", encoding)
    # As S3 does, NextMarker only with a delimiter; without one, clients go on from the last key.
    if truncated and page and delimiter:
        element(document, "NextMarker", text(page[-1][0]))
    _write_page(document, page, text, owner=True)
    return xml_response(document)
