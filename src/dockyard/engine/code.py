"""Script mode: the code that `sagemaker_submit_directory` names, put into each host's
/opt/ml/code before the program starts (the training toolkit then skips its own download, as it
does for code baked into an image)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dockyard.contract.errors import NoSuchKey, ValidationError
from dockyard.engine.archives import safe_extract
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
    local: Path | None = None  # a folder or a file on this machine
    s3: S3Uri | None = None

    @property
    def is_archive(self) -> bool:
        name = self.local.name if self.local is not None else (self.s3.key if self.s3 else "")
        return name.endswith(_ARCHIVES)


def find_code(uri: str, store: ObjectStore, forbidden: list[Path]) -> CodeSource:
    """Check that the code exists before the job is accepted; say what to fix if not."""
    path = local_path_of(uri)
    if path is not None:
        # A folder holding dockyard's state would be copied into /opt/ml/code: refused too.
        resolved = checked_local_path(f"{SUBMIT_DIRECTORY} {uri}", path, forbidden)
        return CodeSource(uri, local=resolved)
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


def stage_code(source: CodeSource, store: ObjectStore, dest: Path, scratch: Path) -> None:
    """Put the code into `dest` (a host's /opt/ml/code): a folder is copied, an archive is
    extracted safely (no absolute paths, `..`, links out of the folder or devices), another
    file is copied in, as the toolkit's own download does."""
    dest.mkdir(parents=True, exist_ok=True)
    local = source.local
    if source.s3 is not None:
        scratch.mkdir(parents=True, exist_ok=True)
        local = scratch / Path(source.s3.key).name
        if not local.exists():
            store.get_file(source.s3.bucket, source.s3.key, local)
    assert local is not None
    if local.is_dir():
        shutil.copytree(local, dest, dirs_exist_ok=True, symlinks=True)
    elif source.is_archive:
        safe_extract(local, dest, f"{SUBMIT_DIRECTORY} {source.uri}")
    else:
        shutil.copy2(local, dest / local.name)
