"""The local object store: every object is a plain file at `<root>/<bucket>/<key>`."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from io import BufferedReader
from pathlib import Path
from typing import IO, BinaryIO

from dockyard.contract.errors import (
    BucketNotEmpty,
    KeyConflict,
    NoSuchBucket,
    NoSuchKey,
    StorageError,
    ValidationError,
)
from dockyard.storage.objects import (
    NO_ATTRIBUTES,
    ObjectAttributes,
    ObjectInfo,
    ObjectStore,
    Progress,
    check_source_file,
    is_bucket_name,
    validate_bucket,
    validate_key,
)

# Writes go to a temp file here and are renamed into place. Bucket names cannot start with a dot,
# so this folder is never mistaken for a bucket, and it sits on the same file system as the
# buckets, which keeps the rename atomic.
TEMP_DIR_NAME = ".tmp"
_CHUNK_BYTES = 8 * 1024 * 1024
_OBJECT_MODE = 0o644
# A file name's limit (NAME_MAX) on Linux's file systems: each segment of a key is one.
MAX_SEGMENT_BYTES = 255
# A rename can lose a race with delete(), which prunes empty folders; making the folder again
# and retrying is enough, because the pruning only ever removes empty folders.
_INSTALL_ATTEMPTS = 5


# The ETag a writer computed (the S3 API: the body's MD5), kept as an extended attribute of the
# object's file: it travels with the inode through the rename that installs the object, and a
# later write (a new inode) cannot inherit a stale one.
ETAG_XATTR = "user.dockyard.etag"


# The object's attributes (Content-Type, user metadata, checksums; ObjectAttributes as JSON),
# kept the same way. Not a sidecar file: a file beside the object could be named by a key.
ATTRIBUTES_XATTR = "user.dockyard.attributes"


def stored_attributes(path: int | str | os.PathLike[str]) -> ObjectAttributes:
    try:
        if isinstance(path, int):
            return ObjectAttributes.from_json(os.getxattr(path, ATTRIBUTES_XATTR))
        return ObjectAttributes.from_json(
            os.getxattr(path, ATTRIBUTES_XATTR, follow_symlinks=False)
        )
    except OSError:
        return NO_ATTRIBUTES


def stored_etag(path: int | str | os.PathLike[str]) -> str | None:
    """The ETag kept with the file (a path, or an open file's descriptor), if any."""
    try:
        if isinstance(path, int):
            return os.getxattr(path, ETAG_XATTR).decode("ascii")
        return os.getxattr(path, ETAG_XATTR, follow_symlinks=False).decode("ascii")
    except (OSError, UnicodeDecodeError):
        return None


def _keep_etag(
    path: str | os.PathLike[str], etag: str | None, attributes: ObjectAttributes = NO_ATTRIBUTES
) -> None:
    # A file system without user xattrs: the object gets etag_of's ETag and no attributes.
    if etag is not None:
        with contextlib.suppress(OSError):
            os.setxattr(path, ETAG_XATTR, etag.encode("ascii"), follow_symlinks=False)
    if attributes:
        with contextlib.suppress(OSError):
            value = attributes.to_json().encode("utf-8", "surrogateescape")
            os.setxattr(path, ATTRIBUTES_XATTR, value, follow_symlinks=False)


def etag_of(status: os.stat_result) -> str:
    """An S3-style quoted etag for a stored file.

    Not an MD5 of the content: hashing 1 GiB would cost seconds on every write, and staging must
    be instant. Every write renames a new file into place, so (size, mtime_ns, inode) changes
    whenever the content does, which is all an etag promises (S3's multipart etags are not
    content MD5s either). 32 hex digits keep the shape clients expect.
    """
    identity = f"{status.st_size}:{status.st_mtime_ns}:{status.st_ino}"
    return '"' + hashlib.sha256(identity.encode()).hexdigest()[:32] + '"'


def _info(key: str, status: os.stat_result, path: str | os.PathLike[str]) -> ObjectInfo:
    modified = datetime.fromtimestamp(status.st_mtime_ns / 1e9, tz=UTC)
    etag = stored_etag(path) or etag_of(status)
    return ObjectInfo(key, status.st_size, modified, etag, stored_attributes(path))


def _copy_stream(source: BufferedReader, target: IO[bytes], progress: Progress | None) -> None:
    buffer = bytearray(_CHUNK_BYTES)
    view = memoryview(buffer)
    # readinto1 returns what one read gives (a pipe's few KiB) instead of waiting for a full
    # buffer, so progress keeps flowing from slow sources.
    while count := source.readinto1(view):
        target.write(view[:count])
        if progress is not None:
            progress(count)


def _is_utf8(name: str) -> bool:
    # os.scandir decodes undecodable bytes as surrogates; such files were not written by us.
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class LocalObjectStore(ObjectStore):
    """Objects as plain files, so they are easy to inspect and can be hard-linked or bind-mounted
    read-only into sandboxes. Writes are atomic: readers see the old object or the new one."""

    def __init__(self, root: Path) -> None:
        # Nothing touches the disk until the first write.
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    # -- buckets ---------------------------------------------------------------------------

    def create_bucket(self, bucket: str) -> None:
        validate_bucket(bucket)
        folder = self.root / bucket
        try:
            for _ in range(3):
                try:
                    folder.mkdir(parents=True, exist_ok=True)
                    return
                except FileExistsError:
                    # mkdir found the folder, then a concurrent DeleteBucket removed it before
                    # mkdir's own check: make it again (a file by that name stays an error).
                    if folder.exists():
                        raise
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"could not create bucket {bucket!r} in the local store at {self.root}: "
                f"{exc.strerror or exc}"
            ) from exc

    def bucket_exists(self, bucket: str) -> bool:
        validate_bucket(bucket)
        return (self.root / bucket).is_dir()

    def delete_bucket(self, bucket: str) -> None:
        bucket_dir = self._bucket_dir(bucket)
        try:
            bucket_dir.rmdir()
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise BucketNotEmpty(
                    f"bucket {bucket!r} is not empty; delete its objects first"
                ) from None
            raise StorageError(
                f"could not delete bucket {bucket!r} from the local store at {self.root}: "
                f"{exc.strerror or exc}"
            ) from exc

    def list_buckets(self) -> list[str]:
        if not self.root.is_dir():
            return []
        with os.scandir(self.root) as entries:
            return sorted(
                entry.name
                for entry in entries
                if is_bucket_name(entry.name) and entry.is_dir(follow_symlinks=False)
            )

    # -- reading ---------------------------------------------------------------------------

    def list_objects(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        bucket_dir = self._bucket_dir(bucket)
        if prefix:
            self._validate_key(prefix)
        # Start in the deepest folder the prefix names instead of walking the whole bucket.
        folder_key = prefix[: prefix.rfind("/") + 1]
        return self._walk(bucket_dir / folder_key, folder_key, prefix)

    def _walk(self, folder: Path, folder_key: str, prefix: str) -> Iterator[ObjectInfo]:
        try:
            with os.scandir(folder) as scanned:
                entries = [entry for entry in scanned if _is_utf8(entry.name)]
        except (FileNotFoundError, NotADirectoryError):
            return  # nothing under this prefix, or it was deleted while we listed
        # Sorting each folder by its key with a trailing "/" yields keys in global S3 order
        # ("a-b" < "a/c") while streaming, without collecting the whole bucket first.
        named = [
            (folder_key + entry.name + ("/" if entry.is_dir(follow_symlinks=False) else ""), entry)
            for entry in entries
        ]
        named.sort(key=lambda item: item[0])
        for key, entry in named:
            if key.endswith("/"):
                if key.startswith(prefix) or prefix.startswith(key):
                    yield from self._walk(Path(entry.path), key, prefix)
            elif key.startswith(prefix) and entry.is_file(follow_symlinks=False):
                try:
                    status = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # deleted while we listed
                yield _info(key, status, entry.path)

    def head(self, bucket: str, key: str) -> ObjectInfo:
        path = self._object_path(bucket, key)
        try:
            status = os.stat(path, follow_symlinks=False)
        except (FileNotFoundError, NotADirectoryError):
            raise self._missing(bucket, key) from None
        if not stat.S_ISREG(status.st_mode):
            raise self._missing(bucket, key)
        return _info(key, status, path)

    def open_object(self, bucket: str, key: str) -> tuple[BinaryIO, ObjectInfo] | None:
        source = self._open(bucket, key)
        try:
            status = os.fstat(source.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise self._missing(bucket, key)
            modified = datetime.fromtimestamp(status.st_mtime_ns / 1e9, tz=UTC)
            etag = stored_etag(source.fileno()) or etag_of(status)
            attributes = stored_attributes(source.fileno())
        except BaseException:
            source.close()
            raise
        return source, ObjectInfo(key, status.st_size, modified, etag, attributes)

    def get_bytes(self, bucket: str, key: str) -> bytes:
        with self._open(bucket, key) as source:
            return source.read()

    def get_file(
        self, bucket: str, key: str, dest: Path, *, progress: Progress | None = None
    ) -> None:
        # Opening first pins the inode: a concurrent overwrite or delete cannot mix versions.
        with self._open(bucket, key) as source:
            self._write_atomically(dest, lambda target: _copy_stream(source, target, progress))

    def local_path(self, bucket: str, key: str) -> Path | None:
        path = self._object_path(bucket, key)
        if not path.is_file() or path.is_symlink():
            raise self._missing(bucket, key)
        return path

    def local_prefix_dir(self, bucket: str, prefix: str) -> Path | None:
        bucket_dir = self._bucket_dir(bucket)
        if not prefix:
            return bucket_dir
        self._validate_key(prefix)
        folder = bucket_dir / prefix
        if not folder.is_dir() or folder.is_symlink():
            return None
        if not prefix.endswith("/") and self._has_namesakes(folder):
            return None  # prefix "train" also covers "train-01/...", which is not in the folder
        return folder

    @staticmethod
    def _has_namesakes(folder: Path) -> bool:
        with os.scandir(folder.parent) as siblings:
            return any(
                entry.name != folder.name and entry.name.startswith(folder.name)
                for entry in siblings
            )

    # -- writing ---------------------------------------------------------------------------

    def put_bytes(self, bucket: str, key: str, data: bytes) -> None:
        self._put(bucket, key, lambda target: target.write(data))

    def put_stream(
        self, bucket: str, key: str, stream: BinaryIO, *, progress: Progress | None = None
    ) -> None:
        def fill(target: IO[bytes]) -> None:
            while chunk := stream.read(_CHUNK_BYTES):
                target.write(chunk)
                if progress is not None:
                    progress(len(chunk))

        self._put(bucket, key, fill)

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
        path = Path(path)
        check_source_file(path)
        if move and self._move_in(bucket, key, path, progress, etag, attributes):
            return
        with path.open("rb") as source:
            self._put(
                bucket, key, lambda target: _copy_stream(source, target, progress), etag, attributes
            )
        if move:
            path.unlink()

    def _move_in(
        self,
        bucket: str,
        key: str,
        path: Path,
        progress: Progress | None,
        etag: str | None,
        attributes: ObjectAttributes,
    ) -> bool:
        """Rename `path` into place; False when it lives on another file system."""
        target = self._target(bucket, key)
        if target is None:
            path.unlink()
            return True
        size = path.stat().st_size
        _keep_etag(path, etag, attributes)
        try:
            self._install(path, target, bucket, key)
        except StorageError as exc:
            if isinstance(exc.__cause__, OSError) and exc.__cause__.errno == errno.EXDEV:
                return False
            raise
        if progress is not None:
            progress(size)
        return True

    def _put(
        self,
        bucket: str,
        key: str,
        fill: Callable[[IO[bytes]], object],
        etag: str | None = None,
        attributes: ObjectAttributes = NO_ATTRIBUTES,
    ) -> None:
        target = self._target(bucket, key)
        if target is None:
            return
        temp_dir = self.root / TEMP_DIR_NAME
        try:
            temp_dir.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(dir=temp_dir, prefix="put-")
        except OSError as exc:
            raise self._write_failed(bucket, key, exc) from exc
        temp = Path(temp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                fill(out)
            os.chmod(temp, _OBJECT_MODE)  # mkstemp makes 0600; sandboxes may run as other users
            _keep_etag(temp, etag, attributes)
            self._install(temp, target, bucket, key)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise self._write_failed(bucket, key, exc) from exc
        except BaseException:
            temp.unlink(missing_ok=True)
            raise

    def _install(self, source: Path, target: Path, bucket: str, key: str) -> None:
        """Rename `source` to `target` atomically, making the target's folders as needed."""
        for _ in range(_INSTALL_ATTEMPTS):
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                if target.is_dir():
                    raise self._conflict(bucket, key)
                os.replace(source, target)
                return
            except FileNotFoundError:
                if not source.exists():
                    raise
                continue  # delete() pruned the parent between mkdir and rename
            except (FileExistsError, NotADirectoryError, IsADirectoryError) as exc:
                raise self._conflict(bucket, key) from exc
            except OSError as exc:
                raise self._write_failed(bucket, key, exc) from exc
        raise StorageError(
            f"could not store s3://{bucket}/{key}: its folder kept disappearing under concurrent "
            "deletes; try again"
        )

    def delete(self, bucket: str, key: str) -> None:
        path = self._object_path(bucket, key)
        bucket_dir = self._bucket_dir(bucket)
        if key.endswith("/") or path.is_dir():
            return  # folder markers are stored as nothing; a folder of other keys is no object
        try:
            path.unlink()
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise StorageError(
                f"could not delete s3://{bucket}/{key} from the local store: {exc.strerror or exc}"
            ) from exc
        self._prune_empty_folders(path.parent, bucket_dir)

    @staticmethod
    def _prune_empty_folders(folder: Path, bucket_dir: Path) -> None:
        while folder != bucket_dir and bucket_dir in folder.parents:
            try:
                folder.rmdir()
            except OSError:
                return  # not empty (or already gone): the folders above are still needed
            folder = folder.parent

    # -- paths and errors ------------------------------------------------------------------

    def _bucket_dir(self, bucket: str) -> Path:
        """The bucket's folder; NoSuchBucket when it does not exist."""
        validate_bucket(bucket)
        bucket_dir = self.root / bucket
        if not bucket_dir.is_dir():
            raise NoSuchBucket(
                f"bucket {bucket!r} does not exist in the local store at {self.root}; "
                "create it first"
            )
        return bucket_dir

    @staticmethod
    def _validate_key(key: str) -> None:
        validate_key(key)
        segments = key.rstrip("/").split("/")
        if "" in segments:
            raise ValidationError(
                f"object key {key!r} has an empty path segment ('//'), which the local store "
                "cannot tell apart from a single '/'; use single slashes"
            )
        longest = max(len(segment.encode("utf-8")) for segment in segments)
        if longest > MAX_SEGMENT_BYTES:
            raise ValidationError(
                f"object key {key[:80]!r}... has a path segment of {longest} bytes; the local "
                f"store keeps keys as file paths, whose segments (between '/') are limited to "
                f"{MAX_SEGMENT_BYTES} bytes: split the key with '/' or shorten it"
            )

    def _object_path(self, bucket: str, key: str) -> Path:
        validate_bucket(bucket)
        self._validate_key(key)
        return self.root / bucket / key

    def _target(self, bucket: str, key: str) -> Path | None:
        """Where a write of `key` goes; None for a folder marker, which is stored as nothing."""
        path = self._object_path(bucket, key)
        self._bucket_dir(bucket)
        return None if key.endswith("/") else path

    def _open(self, bucket: str, key: str) -> BufferedReader:
        path = self._object_path(bucket, key)
        try:
            return path.open("rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise self._missing(bucket, key) from None
        except OSError as exc:
            raise StorageError(f"could not read s3://{bucket}/{key}: {exc.strerror}") from exc

    def _missing(self, bucket: str, key: str) -> StorageError:
        self._bucket_dir(bucket)  # raises NoSuchBucket when that is the real problem
        return NoSuchKey(f"object s3://{bucket}/{key} does not exist")

    def _conflict(self, bucket: str, key: str) -> StorageError:
        parts = key.split("/")
        for depth in range(1, len(parts)):
            above = "/".join(parts[:depth])
            if (self.root / bucket / above).is_file():
                return KeyConflict(
                    f"cannot store s3://{bucket}/{key}: object {above!r} exists, and in the local "
                    f"store a key cannot also be a folder of other keys; delete {above!r} or "
                    "choose another key"
                )
        return KeyConflict(
            f"cannot store s3://{bucket}/{key}: objects under {key + '/'!r} exist, and in the "
            "local store a key cannot also be a folder of other keys; choose another key"
        )

    def _write_failed(self, bucket: str, key: str, exc: OSError) -> StorageError:
        return StorageError(
            f"could not store s3://{bucket}/{key} in the local store at {self.root}: "
            f"{exc.strerror or exc}"
        )

    @staticmethod
    def _write_atomically(dest: Path, fill: Callable[[IO[bytes]], object]) -> None:
        """Write `dest` through a temp file beside it, so it appears whole or not at all."""
        dest = Path(dest)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, temp_name = tempfile.mkstemp(
                dir=dest.parent, prefix=f".{dest.name}.", suffix=".part"
            )
        except OSError as exc:
            raise StorageError(f"could not write {dest}: {exc.strerror or exc}") from exc
        try:
            with os.fdopen(fd, "wb") as out:
                fill(out)
            os.chmod(temp_name, _OBJECT_MODE)
            os.replace(temp_name, dest)
        except OSError as exc:
            Path(temp_name).unlink(missing_ok=True)
            raise StorageError(f"could not write {dest}: {exc.strerror or exc}") from exc
        except BaseException:
            Path(temp_name).unlink(missing_ok=True)
            raise
