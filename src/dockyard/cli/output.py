"""How the CLI shows API responses: as wire JSON (`--json`, `describe`), or listings as tables."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table


def wire_json(response: dict[str, Any]) -> str:
    """A boto3 response back in wire form: no ResponseMetadata, timestamps as epoch seconds."""
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}

    def default(value: object) -> object:
        if isinstance(value, datetime):
            return value.timestamp()
        raise TypeError(f"cannot encode {type(value).__name__}")

    return json.dumps(body, indent=2, default=default)


def local_time(value: datetime) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def newest_first(
    status: str | None = None, name_contains: str | None = None, max_results: int = 100
) -> dict[str, Any]:
    """A List* request, newest first, narrowed by the --status and --name-contains options."""
    request: dict[str, Any] = {"MaxResults": max_results, "SortOrder": "Descending"}
    if status:
        request["StatusEquals"] = status
    if name_contains:
        request["NameContains"] = name_contains
    return request


def print_listing(
    response: dict[str, Any],
    as_json: bool,
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
) -> None:
    """The List* response as it came (`--json`), or a table of `rows` under `header`."""
    if as_json:
        click.echo(wire_json(response))
        return
    table = Table(*header, box=None)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
