"""The S3-compatible object store (AWS, MinIO, Ceph, moto) through boto3, with a content cache
keyed by ETag so a second job on the same data starts at once."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import boto3
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as EndpointUnreachable
from s3transfer.subscribers import BaseSubscriber

from dockyard.contract.errors import BucketNotEmpty, NoSuchBucket, NoSuchKey, StorageError
from dockyard.storage.objects import (
    NO_ATTRIBUTES,
    ObjectAttributes,
    ObjectInfo,
    ObjectStore,
    Progress,
    check_source_file,
    validate_bucket,
    validate_key,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.literals import BucketLocationConstraintType
    from mypy_boto3_s3.type_defs import ListObjectsV2OutputTypeDef
    from s3transfer.futures import TransferFuture

_MIB = 1024 * 1024
# Parts of 8 MiB, ten at a time: boto3's transfer manager defaults, which is the throughput bar.
# "classic" keeps the s3transfer manager even where awscrt is installed, because the cache
# relies on its ETag pinning (IfMatch on every GET).
TRANSFER_CONFIG = TransferConfig(
    multipart_threshold=8 * _MIB,
    multipart_chunksize=8 * _MIB,
    max_concurrency=10,
    preferred_transfer_client="classic",
)
_IO_CHUNK_BYTES = 256 * 1024
_BODY_ATTEMPTS = 3
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_CACHE_FILE_MODE = 0o444  # cached files are hard-linked into jobs: nobody should write them


class ObjectChanged(StorageError):
    """The object was overwritten between reading its ETag and downloading it."""


class _TransferReport(BaseSubscriber):
    """Passes a transfer's progress on, and pins a download to the size and ETag already known
    (s3transfer then skips its own HEAD and sends IfMatch, so versions are never mixed)."""

    def __init__(
        self, progress: Progress | None, size: int | None = None, etag: str | None = None
    ) -> None:
        self._progress = progress
        self._size = size
        self._etag = etag

    def on_queued(self, future: TransferFuture, **kwargs: Any) -> None:
        if self._size is not None:
            future.meta.provide_transfer_size(self._size)
        if self._etag is not None:
            future.meta.provide_object_etag(self._etag)

    def on_progress(self, future: TransferFuture, bytes_transferred: int, **kwargs: Any) -> None:
        if self._progress is not None:
            self._progress(bytes_transferred)


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _replace_with_link(source: Path, dest: Path) -> None:
    """Make `dest` the same file as `source` (a hard link; a copy across file systems), whole or
    not at all."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.parent / f".{dest.name}.{uuid.uuid4().hex}.part"
    try:
        try:
            os.link(source, temp)
        except OSError:
            shutil.copyfile(source, temp)
        os.replace(temp, dest)
    finally:
        # rename() between two links to one file succeeds without removing the source name.
        temp.unlink(missing_ok=True)


class S3ObjectStore(ObjectStore):
    """Any S3-compatible service. Nothing is cached unless `cache_dir` is given."""

    prefix_workers = 16

    def __init__(
        self,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        cache_dir: Path | None = None,
        *,
        max_attempts: int = 5,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.region = region
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        config = Config(
            retries={"max_attempts": max_attempts, "mode": "standard"},
            max_pool_connections=32,
            # MinIO, Ceph and friends are usually reached by host name or IP, where
            # bucket-in-hostname addressing cannot resolve.
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        # A session of our own: boto3's default session is not safe to share across threads.
        self.client: S3Client = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=config,
        )

    def __repr__(self) -> str:
        return f"S3ObjectStore({self._where!r})"

    @property
    def _where(self) -> str:
        return self.endpoint_url or f"AWS S3 in {self.region}"

    # -- buckets ---------------------------------------------------------------------------

    def create_bucket(self, bucket: str) -> None:
        validate_bucket(bucket)
        try:
            if self.region == "us-east-1":
                self.client.create_bucket(Bucket=bucket)
            else:
                self.client.create_bucket(
                    Bucket=bucket,
                    CreateBucketConfiguration={
                        "LocationConstraint": cast("BucketLocationConstraintType", self.region)
                    },
                )
        except ClientError as exc:
            code = _error_code(exc)
            if code == "BucketAlreadyOwnedByYou":
                return
            if code == "BucketAlreadyExists" and self.bucket_exists(bucket):
                return  # some services answer this way for a bucket we can already use
            raise self._translate(exc, bucket) from exc
        except BotoCoreError as exc:
            raise self._translate(exc, bucket) from exc

    def bucket_exists(self, bucket: str) -> bool:
        validate_bucket(bucket)
        try:
            self.client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            if _error_code(exc) in _NOT_FOUND_CODES | {"NoSuchBucket"}:
                return False
            raise self._translate(exc, bucket) from exc
        except BotoCoreError as exc:
            raise self._translate(exc, bucket) from exc
        return True

    def delete_bucket(self, bucket: str) -> None:
        validate_bucket(bucket)
        try:
            self.client.delete_bucket(Bucket=bucket)
        except ClientError as exc:
            if _error_code(exc) == "BucketNotEmpty":
                raise BucketNotEmpty(
                    f"bucket {bucket!r} at {self._where} is not empty; delete its objects first"
                ) from exc
            raise self._translate(exc, bucket) from exc
        except BotoCoreError as exc:
            raise self._translate(exc, bucket) from exc

    def list_buckets(self) -> list[str]:
        with self._translated():
            response = self.client.list_buckets()
        return sorted(bucket["Name"] for bucket in response.get("Buckets", []))

    # -- reading ---------------------------------------------------------------------------

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        validate_bucket(bucket)
        if prefix:
            validate_key(prefix)
        # The first page is fetched now, so a missing bucket fails the call itself.
        with self._translated(bucket):
            first = self.client.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return self._pages(bucket, prefix, first)

    def _pages(
        self, bucket: str, prefix: str, page: ListObjectsV2OutputTypeDef
    ) -> Iterator[ObjectInfo]:
        while True:
            # S3 lists keys in UTF-8 byte order, which is Python's str order too.
            for item in page.get("Contents", []):
                yield ObjectInfo(
                    key=item["Key"],
                    size=item["Size"],
                    last_modified=_utc(item["LastModified"]),
                    etag=item["ETag"],
                )
            if not page.get("IsTruncated"):
                return
            with self._translated(bucket):
                page = self.client.list_objects_v2(
                    Bucket=bucket, Prefix=prefix, ContinuationToken=page["NextContinuationToken"]
                )

    def head(self, bucket: str, key: str) -> ObjectInfo:
        validate_bucket(bucket)
        validate_key(key)
        with self._translated(bucket, key):
            response = self.client.head_object(Bucket=bucket, Key=key)
        return ObjectInfo(
            key=key,
            size=response["ContentLength"],
            last_modified=_utc(response["LastModified"]),
            etag=response["ETag"],
            attributes=ObjectAttributes(response.get("ContentType"), response.get("Metadata", {})),
        )

    def get_bytes(self, bucket: str, key: str) -> bytes:
        validate_bucket(bucket)
        validate_key(key)
        with self._translated(bucket, key):
            body = self.client.get_object(Bucket=bucket, Key=key)["Body"]
            with contextlib.closing(body):
                return body.read()

    def get_file(
        self, bucket: str, key: str, dest: Path, *, progress: Progress | None = None
    ) -> None:
        self._get_listed(bucket, self.head(bucket, key), Path(dest), progress)

    def _get_listed(
        self, bucket: str, info: ObjectInfo, dest: Path, progress: Progress | None
    ) -> None:
        try:
            self._fetch(bucket, info, dest, progress)
        except ObjectChanged:
            # Overwritten since it was listed: fetch the version that is there now.
            self._fetch(bucket, self.head(bucket, info.key), dest, progress)

    def _fetch(self, bucket: str, info: ObjectInfo, dest: Path, progress: Progress | None) -> None:
        if self.cache_dir is None:
            self._download(bucket, info, dest, progress)
            return
        cached = self._cache_path(bucket, info)
        if not self._is_cached(cached, info):
            self._download_into_cache(bucket, info, cached, progress)
        _replace_with_link(cached, dest)

    def _download(
        self, bucket: str, info: ObjectInfo, dest: Path, progress: Progress | None
    ) -> None:
        """Write the object version `info` describes to `dest`, whole or not at all; every GET
        carries IfMatch with its ETag, so a concurrent overwrite fails (ObjectChanged) instead
        of mixing versions or filing new bytes under the old ETag."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self._translated(bucket, info.key):
            if info.size < TRANSFER_CONFIG.multipart_threshold:
                self._download_whole(bucket, info, dest, progress)
                return
            # Concurrent ranged GETs. s3transfer writes a temp file beside `dest` and renames
            # it; given the size and ETag it skips its own HEAD and pins every range.
            report = _TransferReport(progress, size=info.size, etag=info.etag)
            with create_transfer_manager(self.client, TRANSFER_CONFIG) as manager:
                manager.download(bucket, info.key, str(dest), subscribers=[report]).result()

    def _download_whole(
        self, bucket: str, info: ObjectInfo, dest: Path, progress: Progress | None
    ) -> None:
        """One GET for a small object: no thread pool or ranges (s3transfer's single GET would
        not pin the ETag either)."""
        temp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        try:
            for attempt in range(1, _BODY_ATTEMPTS + 1):
                try:
                    self._stream_into(bucket, info, temp, progress)
                    break
                except HTTPClientError:
                    # botocore retries requests, not a body that breaks off halfway.
                    if attempt == _BODY_ATTEMPTS:
                        raise
            os.replace(temp, dest)
        except OSError as exc:
            raise StorageError(f"could not write {dest}: {exc.strerror or exc}") from exc
        finally:
            temp.unlink(missing_ok=True)

    def _stream_into(
        self, bucket: str, info: ObjectInfo, temp: Path, progress: Progress | None
    ) -> None:
        response = self.client.get_object(Bucket=bucket, Key=info.key, IfMatch=info.etag)
        written = 0
        try:
            with contextlib.closing(response["Body"]) as body, temp.open("wb") as out:
                for chunk in body.iter_chunks(_IO_CHUNK_BYTES):
                    out.write(chunk)
                    written += len(chunk)
                    if progress is not None:
                        progress(len(chunk))
        except HTTPClientError:
            if progress is not None and written:
                progress(-written)  # taken back, as boto3 does when it retries a part
            raise

    # -- the content cache -----------------------------------------------------------------

    def _cache_path(self, bucket: str, info: ObjectInfo) -> Path:
        assert self.cache_dir is not None
        # An ETag changes whenever the object does, so (endpoint, bucket, key, etag) names one
        # content for good; entries never need invalidating, only evicting.
        identity = "\0".join((self._where, bucket, info.key, info.etag))
        return self.cache_dir / hashlib.sha256(identity.encode()).hexdigest()

    @staticmethod
    def _is_cached(cached: Path, info: ObjectInfo) -> bool:
        try:
            return cached.stat().st_size == info.size
        except FileNotFoundError:
            return False

    def _download_into_cache(
        self, bucket: str, info: ObjectInfo, cached: Path, progress: Progress | None
    ) -> None:
        # A temp name first, then a rename: two jobs fetching the same object at once each
        # install a whole file, and a crash never leaves a short one behind.
        temp = cached.with_name(f".{cached.name}.{uuid.uuid4().hex}.part")
        try:
            self._download(bucket, info, temp, progress)
            os.chmod(temp, _CACHE_FILE_MODE)
            os.replace(temp, cached)
        except OSError as exc:
            raise StorageError(
                f"could not write the S3 cache entry {cached}: {exc.strerror or exc}"
            ) from exc
        finally:
            temp.unlink(missing_ok=True)

    # -- writing ---------------------------------------------------------------------------

    def put_bytes(self, bucket: str, key: str, data: bytes) -> None:
        validate_bucket(bucket)
        validate_key(key)
        with self._translated(bucket, key):
            self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def put_file(
        self,
        bucket: str,
        key: str,
        path: Path,
        *,
        progress: Progress | None = None,
        move: bool = False,
        etag: str | None = None,
        attributes: ObjectAttributes = NO_ATTRIBUTES,
    ) -> None:
        validate_bucket(bucket)
        validate_key(key)
        path = Path(path)
        check_source_file(path)
        report = _TransferReport(progress)
        # The remote store keeps Content-Type and metadata itself; checksums it computes anew.
        extra: dict[str, Any] = {"Metadata": dict(attributes.metadata)}
        if attributes.content_type:
            extra["ContentType"] = attributes.content_type
        with (
            self._translated(bucket, key),
            create_transfer_manager(self.client, TRANSFER_CONFIG) as manager,
        ):
            manager.upload(str(path), bucket, key, extra, subscribers=[report]).result()
        if move:
            path.unlink()  # the same outcome as the local store's rename

    def put_stream(
        self, bucket: str, key: str, stream: BinaryIO, *, progress: Progress | None = None
    ) -> None:
        validate_bucket(bucket)
        validate_key(key)
        report = _TransferReport(progress)
        with (
            self._translated(bucket, key),
            create_transfer_manager(self.client, TRANSFER_CONFIG) as manager,
        ):
            manager.upload(stream, bucket, key, subscribers=[report]).result()

    def delete(self, bucket: str, key: str) -> None:
        validate_bucket(bucket)
        validate_key(key)
        with self._translated(bucket, key):
            self.client.delete_object(Bucket=bucket, Key=key)

    def local_path(self, bucket: str, key: str) -> Path | None:
        return None

    def local_prefix_dir(self, bucket: str, prefix: str) -> Path | None:
        return None

    # -- errors ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _translated(self, bucket: str | None = None, key: str | None = None) -> Iterator[None]:
        """Turn botocore's errors into dockyard's at this boundary."""
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise self._translate(exc, bucket, key) from exc

    def _translate(
        self, exc: ClientError | BotoCoreError, bucket: str | None, key: str | None = None
    ) -> StorageError:
        target = f"s3://{bucket}/{key or ''}" if bucket else self._where
        if isinstance(exc, ClientError):
            return self._translate_client_error(exc, bucket, key, target)
        if isinstance(exc, (EndpointUnreachable, HTTPClientError)):
            return StorageError(
                f"cannot reach the S3 endpoint {self._where} ({exc}); check that it is running "
                "and that the endpoint URL is right"
            )
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return StorageError(
                f"no credentials for the S3 endpoint {self._where}: set an access key id and "
                "secret access key in dockyard's settings or AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY"
            )
        return StorageError(f"S3 request for {target} failed: {exc}")

    def _translate_client_error(
        self, exc: ClientError, bucket: str | None, key: str | None, target: str
    ) -> StorageError:
        code = _error_code(exc)
        if code == "NoSuchBucket" or (code in _NOT_FOUND_CODES and key is None and bucket):
            return NoSuchBucket(
                f"bucket {bucket!r} does not exist at {self._where}; create it first"
            )
        if code in _NOT_FOUND_CODES and bucket and key is not None:
            # HEAD answers a bare 404 for a missing bucket too; ask which one is missing.
            if not self.bucket_exists(bucket):
                return NoSuchBucket(
                    f"bucket {bucket!r} does not exist at {self._where}; create it first"
                )
            return NoSuchKey(f"object {target} does not exist")
        if code in ("PreconditionFailed", "412"):
            return ObjectChanged(f"object {target} changed while it was downloaded; try again")
        message = exc.response.get("Error", {}).get("Message", "")
        return StorageError(
            f"S3 {exc.operation_name} of {target} failed at {self._where}: {code} {message}"
        )
