"""Job outputs: model.tar.gz and output.tar.gz from the hosts' folders, members at the root."""

from __future__ import annotations

import os
import tarfile
from collections.abc import Callable
from pathlib import Path

from dockyard.storage.objects import ObjectStore, S3Uri


def _members(folders: list[Path]) -> dict[str, Path]:
    """Relative path → file, over every host's folder. When hosts write the same name, the
    lowest-numbered host wins (SageMaker says they "overwrite each other"; algo-1 is the host
    that by convention saves the model, so it is the one to keep)."""
    members: dict[str, Path] = {}
    for folder in reversed(folders):
        if not folder.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            for name in [*sorted(dirnames), *sorted(filenames)]:
                path = Path(dirpath) / name
                members[path.relative_to(folder).as_posix()] = path
    return dict(sorted(members.items()))


def make_tarball(folders: list[Path], dest: Path) -> int:
    """Write a gzip tar of the merged folders' contents (no leading folder). Links are stored
    as links, never followed out of the folder. Returns the archive's size."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest, "w:gz", compresslevel=6) as archive:
        for relative, path in _members(folders).items():
            archive.add(path, arcname=relative, recursive=False)
    return dest.stat().st_size


def pack_artifacts(
    model_folders: list[Path], output_folders: list[Path], work_dir: Path
) -> list[Path]:
    """model.tar.gz from every host's /opt/ml/model, output.tar.gz from /opt/ml/output/data."""
    model_tar = work_dir / "model.tar.gz"
    output_tar = work_dir / "output.tar.gz"
    make_tarball(model_folders, model_tar)
    make_tarball(output_folders, output_tar)
    return [model_tar, output_tar]


def upload_artifacts(
    store: ObjectStore,
    output_path: str,
    job_name: str,
    tarballs: list[Path],
    progress: Callable[[int], None] | None = None,
) -> str:
    """Move the archives to `<S3OutputPath>/<job>/output/`; return the model's URI."""
    base = S3Uri.parse(output_path).join(job_name, "output")
    store.create_bucket(base.bucket)
    for tarball in tarballs:
        target = base.join(tarball.name)
        store.put_file(target.bucket, target.key, tarball, progress=progress, move=True)
    return str(base.join("model.tar.gz"))


def model_artifacts_uri(output_path: str, job_name: str) -> str:
    return str(S3Uri.parse(output_path).join(job_name, "output", "model.tar.gz"))
