"""Input channels: find a channel's objects when a job is created, and stage them per host
before the program starts (File / FastFile as read-only folders, Pipe as FIFOs)."""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from dockyard.contract.errors import ValidationError
from dockyard.engine.job_files import open_folder, open_resolved, walk
from dockyard.engine.local_paths import LocalPaths
from dockyard.storage.objects import ObjectStore, S3Uri, key_relative_to_prefix


@dataclass(frozen=True)
class ChannelFile:
    relative: str  # path under the channel folder, "/"-separated
    size: int
    # The file on this machine, when there is one: a resolved path (no link in it), which is
    # read with job_files.open_resolved so that nobody can swap a link into it.
    local: Path | None = None
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


def _walk(what: str, folder: Path, local: LocalPaths) -> tuple[list[ChannelFile], bool]:
    """The channel's files in a resolved local folder, and whether the folder holds exactly
    them (so it can be bound as is). Walked without following links; hidden files and folders
    are left out; a link to a file counts as that file when dockyard may read it."""
    files: list[ChannelFile] = []
    exact = True

    def left_out(_relative: str, _why: str) -> None:
        nonlocal exact
        exact = False

    fd = open_folder(Path("/"), PurePosixPath(folder).relative_to("/"))
    try:
        for entry in walk(fd, hidden=False, left_out=left_out):
            if entry.is_file:
                files.append(
                    ChannelFile(entry.relative, entry.status.st_size, folder / entry.relative)
                )
            elif entry.is_link:
                exact = False
                target = Path(os.path.realpath(folder / entry.relative))
                if target.is_file():
                    local.check(f"{what}: the link {entry.relative}", target)
                    files.append(ChannelFile(entry.relative, target.stat().st_size, target))
            elif not entry.is_folder:
                exact = False  # FIFOs, sockets, device nodes: not data
    finally:
        os.close(fd)
    return files, exact


def find_channel_source(
    uri: str, store: ObjectStore, *, local_paths: LocalPaths, remote: bool
) -> ChannelSource:
    """Check that a channel's data exists and list it; errors say what to fix."""
    path = local_path_of(uri)
    if path is not None:
        return _local_source(uri, path, local_paths)
    target = S3Uri.parse(uri)
    if not store.bucket_exists(target.bucket):
        raise ValidationError(f"input {uri}: bucket {target.bucket} does not exist")
    prefix = target.key
    files = []
    resolved = _ResolvedFolders()
    for info in store.list_objects(target.bucket, prefix):
        local = None if remote else store.local_path(target.bucket, info.key)
        files.append(
            ChannelFile(
                key_relative_to_prefix(prefix, info.key),
                info.size,
                local=None if local is None else resolved(local),
                key=info.key,
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


class _ResolvedFolders:
    """A path with its folder resolved, each folder resolved once: the store's files, like
    every ChannelFile.local, are named without links, and a listing may hold many thousands."""

    def __init__(self) -> None:
        self._folders: dict[Path, Path] = {}

    def __call__(self, path: Path) -> Path:
        folder = self._folders.get(path.parent)
        if folder is None:
            folder = self._folders[path.parent] = Path(os.path.realpath(path.parent))
        return folder / path.name


def checked_local_path(what: str, path: Path, local_paths: LocalPaths) -> Path:
    """An existing local path that a job may be given (bound or copied in), resolved: under a
    root of DOCKYARD_LOCAL_PATHS, not hidden, not the root, not a system folder, not dockyard's
    own folder, nor a folder that holds one of them. `what` starts the error ("input
    file:///x", "sagemaker_submit_directory file:///y")."""
    return local_paths.readable(what, path)


def _local_source(uri: str, path: Path, local_paths: LocalPaths) -> ChannelSource:
    what = f"input {uri}"
    resolved = checked_local_path(what, path, local_paths)
    if resolved.is_file():
        return ChannelSource(
            uri, [ChannelFile(resolved.name, resolved.stat().st_size, local=resolved)]
        )
    files, exact = _walk(what, resolved, local_paths)
    if not files:
        raise ValidationError(f"input {uri}: folder {resolved} holds no files")
    # A folder with hidden files, links or anything but files and folders is not bound as is:
    # its files are staged as links instead, so the job sees only them.
    return ChannelSource(uri, files, folder=resolved if exact else None)


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
    resolved = _ResolvedFolders()
    files = [
        ChannelFile(path.relative_to(dest).as_posix(), path.stat().st_size, local=resolved(path))
        for path in paths
    ]
    files.sort(key=lambda f: f.relative)
    return ChannelSource(source.uri, files, folder=dest, bucket=source.bucket, remote=True)


def link_files(files: list[ChannelFile], dest: Path) -> Path:
    """A folder of hard links to `files` (copies when links can't cross filesystems). The
    folder is bound read-only, so a job can't change the objects behind the links. Each link is
    made from a descriptor of the file's folder opened without following links, to the regular
    file that is there: a link swapped into the path after it was checked is never followed."""
    dest.mkdir(parents=True, exist_ok=True)
    folders: dict[Path, int] = {}
    try:
        for item in files:
            assert item.local is not None
            target = dest / item.relative
            target.parent.mkdir(parents=True, exist_ok=True)
            parent = folders.get(item.local.parent)
            if parent is None:
                parent = folders[item.local.parent] = open_folder(
                    Path("/"), PurePosixPath(item.local.parent).relative_to("/")
                )
            try:
                os.link(item.local.name, target, src_dir_fd=parent, follow_symlinks=False)
            except OSError:
                _copy_resolved(item.local, target)
                continue
            if not stat.S_ISREG(os.stat(target, follow_symlinks=False).st_mode):
                target.unlink()
                raise ValidationError(
                    f"{item.local} is no longer a regular file; the channel's data changed "
                    "while the job was being staged"
                )
    finally:
        for fd in folders.values():
            os.close(fd)
    return dest


def _copy_resolved(source: Path, target: Path) -> None:
    """Copy a file by its resolved path (see open_resolved), keeping its mode and times."""
    with open_resolved(source) as reader, open(target, "wb") as writer:
        shutil.copyfileobj(reader, writer)
        status = os.fstat(reader.fileno())
    os.chmod(target, stat.S_IMODE(status.st_mode) & 0o777)
    os.utime(target, ns=(status.st_atime_ns, status.st_mtime_ns))
