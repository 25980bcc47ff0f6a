"""Script mode: the code that `sagemaker_submit_directory` names, put into each host's
/opt/ml/code before the program starts (the training toolkit then skips its own download, as it
does for code baked into an image)."""

from __future__ import annotations

import json
import os
import shutil
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dockyard.contract.errors import NoSuchKey, ValidationError
from dockyard.engine.archives import ArchiveLimits, safe_extract
from dockyard.engine.job_files import open_file, open_folder, open_resolved, walk
from dockyard.engine.local_paths import LocalPaths
from dockyard.engine.staging import checked_local_path, local_path_of
from dockyard.storage.objects import ObjectStore, S3Uri

SUBMIT_DIRECTORY = "sagemaker_submit_directory"
PROGRAM = "sagemaker_program"
CONTAINER_CODE_DIR = "/opt/ml/code"
_ARCHIVES = (".tar.gz", ".tgz", ".tar")


def decoded(value: str) -> str:
    """Framework estimators JSON-encode every hyperparameter (`"\\"train.py\\""`); the toolkit
    decodes them, and so do we, keeping a value that is not JSON as it is."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return value
    return parsed if isinstance(parsed, str) else value


def submit_directory(hyperparameters: Mapping[str, str]) -> str | None:
    """Where the job's code is. For training only the hyperparameter counts: the toolkit reads
    SAGEMAKER_SUBMIT_DIRECTORY from the environment and then overwrites it with the
    hyperparameter or its default, /opt/ml/code (reference §2.3)."""
    raw = hyperparameters.get(SUBMIT_DIRECTORY)
    if raw is None:
        return None
    value = decoded(raw)
    if value.rstrip("/") == CONTAINER_CODE_DIR:
        return None  # code baked into the image, or local mode's rewrite: nothing to stage
    return value


@dataclass(frozen=True)
class CodeSource:
    uri: str
    local: Path | None = None  # a folder or a file on this machine, resolved and checked
    s3: S3Uri | None = None
    local_paths: LocalPaths | None = None  # what links inside a local folder may point to

    @property
    def is_archive(self) -> bool:
        name = self.local.name if self.local is not None else (self.s3.key if self.s3 else "")
        return name.endswith(_ARCHIVES)


def find_code(uri: str, store: ObjectStore, local_paths: LocalPaths) -> CodeSource:
    """Check that the code exists before the job is accepted; say what to fix if not."""
    path = local_path_of(uri)
    if path is not None:
        # A folder holding dockyard's state would be copied into /opt/ml/code: refused too.
        resolved = checked_local_path(f"{SUBMIT_DIRECTORY} {uri}", path, local_paths)
        return CodeSource(uri, local=resolved, local_paths=local_paths)
    if not uri.startswith("s3://"):
        raise ValidationError(
            f"{SUBMIT_DIRECTORY} {uri!r} must be an s3:// URI of a sourcedir.tar.gz, a file:// "
            "URI or an absolute path of a folder or archive"
        )
    target = S3Uri.parse(uri)
    try:
        store.head(target.bucket, target.key)
    except NoSuchKey:
        raise ValidationError(
            f"{SUBMIT_DIRECTORY} {uri} does not exist in the object store"
        ) from None
    return CodeSource(uri, s3=target)


def stage_code(
    source: CodeSource,
    store: ObjectStore,
    dest: Path,
    scratch: Path,
    limits: ArchiveLimits | None = None,
) -> None:
    """Put the code into `dest` (a host's /opt/ml/code): a folder is copied, an archive is
    extracted safely (no absolute paths, `..`, links out of the folder or devices) within
    `limits`, another file is copied in, as the toolkit's own download does."""
    dest.mkdir(parents=True, exist_ok=True)
    if source.s3 is not None:
        scratch.mkdir(parents=True, exist_ok=True)
        archive = scratch / Path(source.s3.key).name
        if not archive.exists():
            store.get_file(source.s3.bucket, source.s3.key, archive)
        if source.is_archive:
            safe_extract(archive, dest, f"{SUBMIT_DIRECTORY} {source.uri}", limits)
        else:
            shutil.copy2(archive, dest / archive.name)
        return
    local = source.local
    assert local is not None and source.local_paths is not None
    # Checked again now: the folder or file may have changed since the job was accepted.
    local = checked_local_path(f"{SUBMIT_DIRECTORY} {source.uri}", local, source.local_paths)
    if local.is_dir():
        _copy_folder(source, local, dest)
    elif source.is_archive:
        with open_resolved(local) as opened:
            safe_extract(opened, dest, f"{SUBMIT_DIRECTORY} {source.uri}", limits)
    else:
        with open_resolved(local) as reader, open(dest / local.name, "wb") as writer:
            shutil.copyfileobj(reader, writer)


def _copy_folder(source: CodeSource, folder: Path, dest: Path) -> None:
    """Copy a local code folder without following its links: hidden files and folders are left
    out, a link to a file is copied as that file when dockyard may read it, a link to a folder
    is copied as a link (the job resolves it in its own sandbox), FIFOs and devices are not."""
    assert source.local_paths is not None
    what = f"{SUBMIT_DIRECTORY} {source.uri}"
    fd = open_folder(Path("/"), PurePosixPath(folder).relative_to("/"))
    try:
        for entry in walk(fd, hidden=False):
            target = dest / entry.relative
            if entry.is_folder:
                target.mkdir(exist_ok=True)
            elif entry.is_file:
                with open_file(fd, entry.relative) as reader, open(target, "wb") as writer:
                    shutil.copyfileobj(reader, writer)
                os.chmod(target, stat.S_IMODE(entry.status.st_mode) & 0o777)
                os.utime(target, ns=(entry.status.st_atime_ns, entry.status.st_mtime_ns))
            elif entry.is_link:
                _copy_link(what, folder / entry.relative, entry.link or "", target, source)
    finally:
        os.close(fd)


def _copy_link(what: str, link: Path, points_to: str, target: Path, source: CodeSource) -> None:
    assert source.local_paths is not None
    resolved = Path(os.path.realpath(link))
    if resolved.is_file():
        source.local_paths.check(f"{what}: the link {link}", resolved)
        with open_resolved(resolved) as reader, open(target, "wb") as writer:
            shutil.copyfileobj(reader, writer)
    elif resolved.is_dir():
        os.symlink(points_to, target)
