"""Opening the configured object store; adapters load lazily so boto3 loads only for S3."""

from __future__ import annotations

from pathlib import Path

from dockyard.contract.errors import ValidationError
from dockyard.settings import Settings
from dockyard.storage.local_store import LocalObjectStore
from dockyard.storage.objects import ObjectStore

OBJECT_STORE_KINDS = ("local", "s3")


def open_object_store(
    kind: str,
    *,
    root: Path,
    endpoint_url: str | None = None,
    region: str = "us-east-1",
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    cache_dir: Path | None = None,
) -> ObjectStore:
    """The object store named by `kind`: "local" keeps objects under `root`; "s3" talks to an
    S3-compatible endpoint (AWS when `endpoint_url` is None) and ignores `root`."""
    if kind == "local":
        return LocalObjectStore(root)
    if kind == "s3":
        # Imported here so that boto3 loads only when an S3 store is configured (uvicorn's
        # import strings serve the same purpose).
        from dockyard.storage.s3_store import S3ObjectStore

        return S3ObjectStore(
            endpoint_url=endpoint_url,
            region=region,
            access_key_id=access_key_id,
            secret_access_key=secret_access_key,
            cache_dir=cache_dir,
        )
    raise ValidationError(
        f"unknown object store kind {kind!r}; known kinds: {', '.join(OBJECT_STORE_KINDS)}"
    )


def store_from_settings(settings: Settings) -> ObjectStore:
    """The store the settings name: the local folder under DOCKYARD_HOME, or an S3 endpoint."""
    return open_object_store(
        settings.store,
        root=settings.store_root,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key,
        cache_dir=settings.cache_dir / "s3",
    )
