"""Parsing the CLI's KEY=VALUE options into API values."""

from __future__ import annotations

import click

from dockyard.contract.tags import RUNTIME_NAMES, RUNTIME_TAG


def key_values(values: tuple[str, ...], option: str) -> dict[str, str]:
    """`--hp a=1 --hp b=2` → {"a": "1", "b": "2"}; values are kept byte for byte."""
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=option)
        out[key] = value
    return out


runtime_option = click.option(
    "--runtime",
    type=click.Choice(RUNTIME_NAMES),
    help="Run the hosts in this runtime (the dockyard:runtime tag): process (sandboxes, the "
    "default for image folders and framework images) or docker (a container engine, the default "
    "for any other image).",
)


def runtime_tags(runtime: str | None) -> list[dict[str, str]]:
    """The Tags of a create request asking for `runtime` (none when it asks for none)."""
    return [{"Key": RUNTIME_TAG, "Value": runtime}] if runtime else []
