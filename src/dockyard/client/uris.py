"""Local paths in requests: the server (not the caller's shell) reads them, so they go absolute."""

from __future__ import annotations

from pathlib import Path


def local_path(uri: str) -> Path | None:
    """The local path a URI names (a file:// URI or any path); None for s3:// URIs. `file://`
    is simply dropped, so `file://data` is the relative path `data`."""
    if uri.startswith("s3://"):
        return None
    return Path(uri.removeprefix("file://")).expanduser()


def data_uri(value: str) -> str:
    """s3:// passes through; a local path or file:// URI becomes an absolute file:// URI."""
    path = local_path(value)
    return value if path is None else "file://" + str(path.absolute())


def image_ref(value: str) -> str:
    """An image folder becomes an absolute path; anything else, such as
    `dockyard/pytorch:2.13` or an ECR URI, is passed on as named."""
    path = local_path(value)
    if path is not None and (value.startswith(("file://", ".", "/", "~")) or path.exists()):
        return str(path.absolute())
    return value
