"""Input channels: find a channel's objects when a job is created, and stage them per host
before the program starts (File / FastFile as read-only folders, Pipe as FIFOs)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from dockyard.contract.errors import ValidationError
from dockyard.storage.objects import ObjectStore, S3Uri, key_relative_to_prefix

# Folders a channel may never expose to a job: the machine's own state and dockyard's.
_SENSITIVE = ("/proc", "/sys", "/dev", "/boot", "/run")


@dataclass(frozen=True)
class ChannelFile:
    relative: str  # path under the channel folder, "/"-separated
    size: int
    local: Path | None = None  # the file on this machine, when there is one
    key: str | None = None  # the object key, when it comes from a remote store


@dataclass
class ChannelSource:
    """Where a channel's data is, found once at CreateTrainingJob time."""

    uri: str
    files: list[ChannelFile]
    # A folder holding exactly the channel's files, bindable as is (zero copy).
    folder: Path | None = None
    bucket: str | None = None
    remote: bool = False
    total_bytes: int = field(init=False)

    def __post_init__(self) -> None:
        self.total_bytes = sum(f.size for f in self.files)


def local_path_of(uri: str) -> Path | None:
    """The path named by `file://...` or a plain absolute path; None for s3:// URIs."""
    if uri.startswith("file://"):
        parsed = urlparse(uri)
        return Path(unquote(parsed.path))
    if uri.startswith("/"):
        return Path(uri)
    return None


def _walk(folder: Path) -> list[ChannelFile]:
    files = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_file():
                rel = path.relative_to(folder).as_posix()
                files.append(ChannelFile(rel, path.stat().st_size, local=path))
    files.sort(key=lambda f: f.relative)
    return files


def find_channel_source(
    uri: str, store: ObjectStore, *, forbidden: list[Path], remote: bool
) -> ChannelSource:
    """Check that a channel's data exists and list it; errors say what to fix."""
    path = local_path_of(uri)
    if path is not None:
        return _local_source(uri, path, forbidden)
    target = S3Uri.parse(uri)
    if not store.bucket_exists(target.bucket):
        raise ValidationError(f"input {uri}: bucket {target.bucket} does not exist")
    prefix = target.key
    files = []
    for info in store.list_objects(target.bucket, prefix):
        local = None if remote else store.local_path(target.bucket, info.key)
        files.append(
            ChannelFile(
                key_relative_to_prefix(prefix, info.key), info.size, local=local, key=info.key
            )
        )
    folder = None
    under = prefix if prefix == "" or prefix.endswith("/") else prefix + "/"
    if not remote and all(f.key is not None and f.key.startswith(under) for f in files):
        folder = store.local_prefix_dir(target.bucket, prefix)
    if not files:
        raise ValidationError(
            f"input {uri} holds no objects: upload data there first "
            f"(dockyard s3 cp FILE {uri.rstrip('/')}/FILE)"
        )
    return ChannelSource(uri, files, folder=folder, bucket=target.bucket, remote=remote)


def checked_local_path(what: str, path: Path, forbidden: list[Path]) -> Path:
    """An existing local path that a job may be given (bound or copied in): not the root, not a
    system folder, not dockyard's own folder, nor a folder that holds one of them. `what` starts
    the error ("input file:///x", "sagemaker_submit_directory file:///y")."""
    if not path.is_absolute():
        raise ValidationError(f"{what}: local paths must be absolute")
    resolved = path.resolve()
    if not resolved.exists():
        raise ValidationError(f"{what}: {path} does not exist")
    if resolved == Path("/"):
        raise ValidationError(f"{what}: the root folder can't be given to a job")
    for bad in [*(Path(p) for p in _SENSITIVE), *forbidden]:
        if resolved == bad or bad in resolved.parents or resolved in bad.parents:
            raise ValidationError(
                f"{what}: {resolved} is or holds a system or dockyard folder and can't be "
                "given to a job"
            )
    return resolved


def _local_source(uri: str, path: Path, forbidden: list[Path]) -> ChannelSource:
    resolved = checked_local_path(f"input {uri}", path, forbidden)
    if resolved.is_file():
        return ChannelSource(
            uri, [ChannelFile(resolved.name, resolved.stat().st_size, local=resolved)]
        )
    files = _walk(resolved)
    if not files:
        raise ValidationError(f"input {uri}: folder {resolved} holds no files")
    return ChannelSource(uri, files, folder=resolved)


def shard(files: list[ChannelFile], host_index: int, host_count: int) -> list[ChannelFile]:
    """ShardedByS3Key: objects in key order, dealt round-robin (object i goes to host i mod N).
    Objects are never split; with more hosts than objects some hosts get none."""
    return files[host_index::host_count]


def download_remote(
    source: ChannelSource,
    store: ObjectStore,
    dest: Path,
    progress: Callable[[int], None] | None = None,
) -> ChannelSource:
    """Fetch a remote channel once per job into `dest`; every host then binds the same files.
    The store fetches concurrently and from its content cache, using what the listing said."""
    assert source.bucket is not None
    dest.mkdir(parents=True, exist_ok=True)
    prefix = S3Uri.parse(source.uri).key
    paths = store.get_prefix(source.bucket, prefix, dest, progress=progress)
    files = [
        ChannelFile(path.relative_to(dest).as_posix(), path.stat().st_size, local=path)
        for path in paths
    ]
    files.sort(key=lambda f: f.relative)
    return ChannelSource(source.uri, files, folder=dest, bucket=source.bucket, remote=True)


def link_files(files: list[ChannelFile], dest: Path) -> Path:
    """A folder of hard links to `files` (copies when links can't cross filesystems). The
    folder is bound read-only, so a job can't change the objects behind the links."""
    dest.mkdir(parents=True, exist_ok=True)
    for item in files:
        assert item.local is not None
        target = dest / item.relative
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(item.local, target)
        except OSError:
            shutil.copy2(item.local, target)
    return dest
