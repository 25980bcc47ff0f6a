"""Parsing the CLI's KEY=VALUE options into API values."""

from __future__ import annotations

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
