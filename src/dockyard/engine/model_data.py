"""Model data for serving: a model's ModelDataUrl (model.tar.gz in the store or on this machine)
unpacked into the folder an instance sees as /opt/ml/model, before `serve` starts."""

from __future__ import annotations

from pathlib import Path

from dockyard.contract.errors import ValidationError
from dockyard.engine.archives import safe_extract
from dockyard.engine.staging import local_path_of
from dockyard.storage.objects import ObjectStore, S3Uri


def stage_model_data(url: str | None, store: ObjectStore, dest: Path, scratch: Path) -> None:
    """Unpack `url` into `dest` (made empty first). No URL: an empty model folder, as a BYOC
    image that carries its own model expects. The archive is fetched into `scratch` first."""
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise ValidationError(f"the model folder {dest} is not empty")
    if url is None:
        return
    archive = local_path_of(url)
    if archive is None:
        target = S3Uri.parse(url)
        scratch.mkdir(parents=True, exist_ok=True)
        archive = scratch / "model.tar.gz"
        store.get_file(target.bucket, target.key, archive)
    if not archive.is_file():
        raise ValidationError(f"ModelDataUrl {url}: {archive} is not a file")
    safe_extract(archive, dest, f"ModelDataUrl {url}")
