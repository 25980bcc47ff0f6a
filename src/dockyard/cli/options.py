"""Parsing the CLI's KEY=VALUE options and local paths into API values."""

from __future__ import annotations

from pathlib import Path

import click


def key_values(values: tuple[str, ...], option: str) -> dict[str, str]:
    """`--hp a=1 --hp b=2` → {"a": "1", "b": "2"}; values are kept byte for byte."""
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=option)
        out[key] = value
    return out


def data_uri(value: str) -> str:
    """s3:// and file:// pass through; a local path becomes an absolute file:// URI, because
    the server (not this shell) reads it and its working folder is not ours."""
    if value.startswith("s3://"):
        return value
    if value.startswith("file://"):
        value = value.removeprefix("file://")
    return "file://" + str(Path(value).expanduser().absolute())


def image_ref(value: str) -> str:
    """An image folder becomes an absolute path; anything else is passed on as named."""
    path = Path(value.removeprefix("file://")).expanduser()
    if value.startswith(("file://", ".", "/", "~")) or path.exists():
        return str(path.absolute())
    return value
