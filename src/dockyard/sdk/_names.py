"""Resource names as the SDK makes them: a base from an image, a unique name from a base
(`<base>-<timestamp>`, at most 63 characters), and the base back from such a name."""

from __future__ import annotations

import re

from dockyard.contract.names import job_name_from_base

_IMAGE_REPOSITORY = re.compile(r"^(?:.+/)?([^:/]+)(?::[^:/]+)?$")
_NAME_TIMESTAMP = re.compile(r"^(.+)-(?:\d{4}(?:-\d{2}){5}-\d{3}|\d{6}-\d{4})$")


def name_from_base(base: str) -> str:
    return job_name_from_base(base)


def base_name_from_image(image: str, default: str) -> str:
    """The repository part of an image name (`dockyard/python:3.11` → `python`), or of an image
    folder's path (its last component)."""
    match = _IMAGE_REPOSITORY.match(image.rstrip("/"))
    return match[1] if match else default


def base_from_name(name: str) -> str:
    """`<base>-<timestamp>` → `<base>`; other names as they are."""
    match = _NAME_TIMESTAMP.match(name)
    return match[1] if match else name
