"""A transform job's outputs written into a local folder (S3OutputPath file://...): only where
DOCKYARD_LOCAL_PATHS allows, folders and files made without following links."""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

from dockyard.engine.job_files import open_folder, write_file
from dockyard.engine.local_paths import LocalPaths


def write_local_output(
    local_paths: LocalPaths, uri: str, folder: Path, relative: str, produced: Path
) -> None:
    """Copy `produced` to `<folder>/<relative>`. The folder is checked again (it may have
    changed since the job was accepted), then reached from its root one component at a time,
    each made if missing and none followed if it is a link; the file is written beside its name
    and renamed over it, so a link or hard link planted there is replaced, not written through."""
    what = f"S3OutputPath {uri}"
    resolved = local_paths.writable(what, folder)
    local_paths.check(what, resolved / relative)  # no hidden name below the folder either
    root = local_paths.root_of(resolved)
    assert root is not None  # writable() refuses what no root holds
    fd = open_folder(root, PurePosixPath(resolved.relative_to(root)), create=True)
    try:
        with open(produced, "rb") as source:
            write_file(fd, relative, lambda out: shutil.copyfileobj(source, out))
    finally:
        os.close(fd)
