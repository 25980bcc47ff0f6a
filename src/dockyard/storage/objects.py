"""The object store interface every adapter implements, and the s3:// URIs that address objects."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import BinaryIO, TypeAlias

from dockyard.contract.errors import StorageError, ValidationError

S3_SCHEME = "s3://"
MAX_KEY_BYTES = 1024

_BUCKET_SHAPE = re.compile(r"[a-z0-9][a-z0-9.-]*[a-z0-9]")
_IP_ADDRESS_SHAPE = re.compile(r"\d+\.\d+\.\d+\.\d+")
_URI_EXAMPLE = "s3://my-bucket/path/to/key"
_KEY_EXAMPLE = "data/train/part-0.csv"

Progress: TypeAlias = Callable[[int], None]
"""Called with the number of bytes just transferred, many times per object. It must be
thread-safe: multipart transfers and get_prefix report from several threads. A retried S3 part
may report a negative count (boto3 rewinds it), so the sum still ends at the object's size."""


def _bucket_problem(bucket: str) -> str | None:
    if not 3 <= len(bucket) <= 63:
        return f"is {len(bucket)} characters long; it must be 3 to 63"
    if not _BUCKET_SHAPE.fullmatch(bucket):
        return (
            "may hold only lowercase letters, digits, dots and hyphens, "
            "and must start and end with a letter or digit"
        )
    if ".." in bucket:
        return "has two dots in a row"
    if _IP_ADDRESS_SHAPE.fullmatch(bucket):
        return "is formatted like an IP address"
    return None


def is_bucket_name(text: str) -> bool:
    """True when `text` follows S3's bucket naming rules."""
    return _bucket_problem(text) is None


def validate_bucket(bucket: str) -> None:
    """Raise ValidationError unless `bucket` follows S3's bucket naming rules."""
    problem = _bucket_problem(bucket)
    if problem is not None:
        raise ValidationError(
            f"bucket name {bucket!r} {problem}; a valid bucket name looks like 'my-bucket'"
        )


def _key_problem(key: str) -> str | None:
    if not key:
        return "is empty"
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        return "is not valid UTF-8 text"
    if size > MAX_KEY_BYTES:
        return f"is {size} bytes long in UTF-8; the limit is {MAX_KEY_BYTES}"
    if "\0" in key:
        return "contains a NUL character"
    if key.startswith("/"):
        return "starts with '/'"
    for segment in key.split("/"):
        if segment in (".", ".."):
            return f"has a {segment!r} path segment"
    return None


def validate_key(key: str) -> None:
    """Raise ValidationError unless `key` can name an object in every store.

    `.` and `..` segments are refused because the local store maps keys to paths (and staging
    maps them into sandboxes): a key must never point outside its bucket.
    """
    problem = _key_problem(key)
    if problem is not None:
        shown = key if len(key) <= 80 else key[:80] + "..."
        raise ValidationError(
            f"object key {shown!r} {problem}; keys are relative paths such as {_KEY_EXAMPLE!r}"
        )


@dataclass(frozen=True)
class S3Uri:
    """An `s3://bucket/key` address; an empty key addresses the whole bucket."""

    bucket: str
    key: str = ""

    def __post_init__(self) -> None:
        validate_bucket(self.bucket)
        if self.key:
            validate_key(self.key)

    @classmethod
    def parse(cls, text: str) -> S3Uri:
        """Read `s3://bucket`, `s3://bucket/` or `s3://bucket/some/key`."""
        if not text.startswith(S3_SCHEME):
            raise ValidationError(
                f"{text!r} is not an S3 URI: it must start with {S3_SCHEME!r}, "
                f"like {_URI_EXAMPLE!r}"
            )
        bucket, _, key = text[len(S3_SCHEME) :].partition("/")
        try:
            return cls(bucket, key)
        except ValidationError as exc:
            raise ValidationError(
                f"invalid S3 URI {text!r}: {exc.message}; a valid URI looks like {_URI_EXAMPLE!r}"
            ) from exc

    def __str__(self) -> str:
        # An empty key prints as `s3://bucket/`, the shape the aws CLI uses for a bucket.
        return f"{S3_SCHEME}{self.bucket}/{self.key}"

    def join(self, *parts: str) -> S3Uri:
        """Append path parts with exactly one `/` between them; a trailing `/` on the last part is
        kept, because it marks a folder prefix."""
        pieces = [piece for piece in (self.key, *parts) if piece.strip("/")]
        if not pieces:
            return S3Uri(self.bucket, "")
        key = "/".join(piece.strip("/") for piece in pieces)
        last = parts[-1] if parts else self.key
        if last.endswith("/"):
            key += "/"
        return S3Uri(self.bucket, key)


def is_s3_uri(text: str) -> bool:
    """True when `text` is a valid `s3://` URI (S3Uri.parse would accept it)."""
    try:
        S3Uri.parse(text)
    except ValidationError:
        return False
    return True


@dataclass(frozen=True)
class ObjectAttributes:
    """What a writer said about an object besides its bytes (through the S3 API: Content-Type,
    x-amz-meta-*, and the x-amz-checksum-* values it sent and that were checked). Objects
    written by jobs have none."""

    content_type: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)  # x-amz-meta-<name> -> value
    checksums: Mapping[str, str] = field(default_factory=dict)  # x-amz-checksum-<alg> -> base64

    def __bool__(self) -> bool:
        return bool(self.content_type or self.metadata or self.checksums)

    def to_json(self) -> str:
        return json.dumps(
            {"content_type": self.content_type, "metadata": dict(self.metadata),
             "checksums": dict(self.checksums)},
            separators=(",", ":"),
        )  # fmt: skip

    @classmethod
    def from_json(cls, text: str | bytes) -> ObjectAttributes:
        """What to_json wrote; anything else (a file touched by hand) reads as no attributes."""
        try:
            record = json.loads(text)
            content_type = record.get("content_type")
            metadata, checksums = record.get("metadata") or {}, record.get("checksums") or {}
        except (ValueError, AttributeError):
            return cls()
        if not (content_type is None or isinstance(content_type, str)):
            return cls()
        if not all(isinstance(v, str) for v in (*metadata.values(), *checksums.values())):
            return cls()
        return cls(content_type, dict(metadata), dict(checksums))


NO_ATTRIBUTES = ObjectAttributes()


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime  # timezone-aware, UTC
    etag: str  # in double quotes, as S3 sends it
    attributes: ObjectAttributes = NO_ATTRIBUTES


def key_relative_to_prefix(prefix: str, key: str) -> str:
    """Where an object under `prefix` lands when the prefix is copied into a folder.

    Paths are relative to the prefix's folder: for prefix `data/train`, key `data/train/a.csv`
    becomes `a.csv` (the prefix names a folder), and for prefix `data/tr`, key
    `data/train-01/a.csv` becomes `train-01/a.csv` (the prefix ends inside a name).
    """
    if prefix and not prefix.endswith("/") and key.startswith(prefix + "/"):
        return key[len(prefix) + 1 :]
    folder = prefix[: prefix.rfind("/") + 1]
    return key[len(folder) :]


def plan_prefix_download(
    prefix: str, objects: Iterable[ObjectInfo], dest_dir: Path
) -> list[tuple[ObjectInfo, Path]]:
    """Pair every object under `prefix` with its destination file, refusing layouts the file
    system cannot hold (two keys on one path, or a key that is also another's folder)."""
    plan: list[tuple[ObjectInfo, Path]] = []
    files: dict[str, str] = {}
    folders: dict[str, str] = {}
    for info in objects:
        if info.key.endswith("/"):
            continue  # a folder marker holds no data
        parts = PurePosixPath(key_relative_to_prefix(prefix, info.key)).parts
        relative = "/".join(parts)
        ancestors = ["/".join(parts[:depth]) for depth in range(1, len(parts))]
        clash = files.get(relative) or folders.get(relative)
        clash = clash or next((files[above] for above in ancestors if above in files), None)
        if clash is not None:
            raise StorageError(
                f"objects {clash!r} and {info.key!r} under prefix {prefix!r} cannot both be "
                f"copied into {dest_dir}: both need the path {relative!r}, as a file or a folder; "
                "rename one of them or choose a narrower prefix"
            )
        files[relative] = info.key
        folders.update((above, info.key) for above in ancestors)
        plan.append((info, dest_dir.joinpath(*parts)))
    return plan


def check_source_file(path: Path) -> None:
    """Raise StorageError unless `path` is something put_file can read (a file or a pipe)."""
    if not path.exists():
        raise StorageError(f"cannot store {path} as an object: the file does not exist")
    if path.is_dir():
        raise StorageError(
            f"cannot store {path} as an object: it is a folder; store its files one by one"
        )


class ObjectStore(ABC):
    """Buckets of objects addressed by key, the way S3 holds them."""

    # How many objects get_prefix copies at once when the caller does not say.
    prefix_workers: int = 4

    @abstractmethod
    def create_bucket(self, bucket: str) -> None:
        """Create `bucket`; creating one that exists is not an error."""

    @abstractmethod
    def bucket_exists(self, bucket: str) -> bool: ...

    @abstractmethod
    def delete_bucket(self, bucket: str) -> None:
        """Remove the empty `bucket`: NoSuchBucket when it does not exist, BucketNotEmpty when
        it holds objects."""

    @abstractmethod
    def list_buckets(self) -> list[str]:
        """Bucket names, sorted."""

    @abstractmethod
    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose key starts with `prefix`, at any depth, sorted by key.

        NoSuchBucket is raised by the call itself, not on the first iteration.
        """

    @abstractmethod
    def head(self, bucket: str, key: str) -> ObjectInfo:
        """The object's size, time and etag; NoSuchKey when it does not exist."""

    @abstractmethod
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
        """Store the file at `path` as the object. With `move=True` the file is consumed: the
        local store renames it into place when it can, and `path` is gone afterwards. `etag`
        (quoted): the ETag the caller computed (the S3 API: the MD5, or a multipart ETag), kept
        with the object by stores that keep their own; remote stores compute theirs.
        `attributes` are kept with the object and come back in its ObjectInfo."""

    @abstractmethod
    def put_stream(
        self, bucket: str, key: str, stream: BinaryIO, *, progress: Progress | None = None
    ) -> None:
        """Store what `stream` holds from where it is to its end as the object. For data that
        must come from a file already opened (checked, then read without opening its path
        again), and for streams that have no path at all."""

    @abstractmethod
    def put_bytes(self, bucket: str, key: str, data: bytes) -> None: ...

    @abstractmethod
    def get_file(
        self, bucket: str, key: str, dest: Path, *, progress: Progress | None = None
    ) -> None:
        """Write the object to `dest`, creating its parent folders; `dest` appears whole or not
        at all."""

    @abstractmethod
    def get_bytes(self, bucket: str, key: str) -> bytes: ...

    @abstractmethod
    def delete(self, bucket: str, key: str) -> None:
        """Remove the object; a missing object is not an error (as in S3)."""

    @abstractmethod
    def local_path(self, bucket: str, key: str) -> Path | None:
        """The object's own file on this machine, for zero-copy staging (hard links, read-only
        bind mounts); None for remote stores. Never write to it."""

    @abstractmethod
    def local_prefix_dir(self, bucket: str, prefix: str) -> Path | None:
        """A folder holding exactly the objects under `prefix`, laid out as get_prefix would lay
        them out; None when the prefix does not end on a folder boundary, or the store is remote."""

    def open_object(self, bucket: str, key: str) -> tuple[BinaryIO, ObjectInfo] | None:
        """The object opened for reading on this machine, with what describes that very
        version (a concurrent overwrite cannot mix versions); None for remote stores."""
        return None

    def get_prefix(
        self,
        bucket: str,
        prefix: str,
        dest_dir: Path,
        *,
        progress: Progress | None = None,
        max_workers: int | None = None,
    ) -> list[Path]:
        """Copy every object under `prefix` into `dest_dir`, keeping key paths relative to the
        prefix's folder (see key_relative_to_prefix); returns the files written, in key order."""
        plan = plan_prefix_download(prefix, self.list_objects(bucket, prefix), dest_dir)
        workers = max_workers or self.prefix_workers
        if workers <= 1 or len(plan) <= 1:
            for info, dest in plan:
                self._get_listed(bucket, info, dest, progress)
        else:
            self._get_concurrently(bucket, plan, workers, progress)
        return [dest for _, dest in plan]

    def _get_listed(
        self, bucket: str, info: ObjectInfo, dest: Path, progress: Progress | None
    ) -> None:
        """Fetch one object get_prefix found; adapters may use what the listing already told."""
        self.get_file(bucket, info.key, dest, progress=progress)

    def _get_concurrently(
        self,
        bucket: str,
        plan: list[tuple[ObjectInfo, Path]],
        workers: int,
        progress: Progress | None,
    ) -> None:
        with ThreadPoolExecutor(workers, thread_name_prefix="dockyard-get-prefix") as pool:
            futures = [
                pool.submit(self._get_listed, bucket, info, dest, progress) for info, dest in plan
            ]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                # Fail fast: do not start the remaining downloads after the first error.
                pool.shutdown(wait=True, cancel_futures=True)
                raise
