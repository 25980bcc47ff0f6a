"""Model data for serving: a model's ModelDataUrl (model.tar.gz in the store or on this machine)
unpacked into the folder an instance sees as /opt/ml/model, before `serve` starts."""

from __future__ import annotations

from pathlib import Path

from dockyard.contract.errors import ValidationError
from dockyard.engine.archives import ArchiveLimits, safe_extract
from dockyard.engine.job_files import open_resolved
from dockyard.engine.local_paths import LocalPaths
from dockyard.engine.staging import local_path_of
from dockyard.storage.objects import ObjectStore, S3Uri


def stage_model_data(
    url: str | None,
    store: ObjectStore,
    dest: Path,
    scratch: Path,
    local_paths: LocalPaths,
    limits: ArchiveLimits | None = None,
) -> None:
    """Unpack `url` into `dest` (made empty first) within `limits`. No URL: an empty model
    folder, as a BYOC image that carries its own model expects. An archive in the store is
    fetched into `scratch` first; one on this machine must be where `local_paths` allow, and
    is read without following links."""
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ValidationError(f"the model folder {dest} is not empty")
    if url is None:
        return
    what = f"ModelDataUrl {url}"
    path = local_path_of(url)
    if path is None:
        target = S3Uri.parse(url)
        scratch.mkdir(parents=True, exist_ok=True)
        archive = scratch / "model.tar.gz"
        store.get_file(target.bucket, target.key, archive)
        safe_extract(archive, dest, what, limits)
        return
    resolved = local_paths.readable(what, path)
    if not resolved.is_file():
        raise ValidationError(f"{what}: {path} is not a file")
    with open_resolved(resolved) as opened:
        safe_extract(opened, dest, what, limits)
