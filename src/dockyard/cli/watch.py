"""Waiting for endpoints from the terminal: the statuses they pass through on the way."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError
from rich.console import Console

from dockyard.cli.errors import is_not_found
from dockyard.client import Client

# Statuses an endpoint leaves on its own; waiting stops at any other.
BUSY = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}
POLL_SECONDS = 0.5


def wait_for_endpoint(client: Client, name: str, console: Console) -> dict[str, Any]:
    """Poll DescribeEndpoint until the endpoint is no longer busy, printing each status it
    passes through; return the last description."""
    started = time.monotonic()
    shown = None
    with console.status(f"waiting for endpoint {name}", spinner="dots"):
        while True:
            described: dict[str, Any] = client.sagemaker.describe_endpoint(EndpointName=name)
            status = described["EndpointStatus"]
            if status != shown:
                _status_line(console, status, started, shown is None)
                shown = status
            if status not in BUSY:
                return described
            time.sleep(POLL_SECONDS)


def wait_until_deleted(client: Client, name: str, console: Console) -> None:
    """Poll until DescribeEndpoint says the endpoint does not exist (botocore's
    EndpointDeleted waiter takes that ValidationException as success, and so do we)."""
    started = time.monotonic()
    shown = None
    with console.status(f"waiting for endpoint {name} to go", spinner="dots"):
        while True:
            try:
                status = client.sagemaker.describe_endpoint(EndpointName=name)["EndpointStatus"]
            except ClientError as exc:
                if is_not_found(exc):
                    return
                raise
            if status != shown:
                _status_line(console, status, started, shown is None)
                shown = status
            time.sleep(POLL_SECONDS)


def _status_line(console: Console, status: str, started: float, first: bool) -> None:
    style = {"InService": "bold green", "Failed": "bold red"}.get(status, "bold cyan")
    when = "" if first else f" after {time.monotonic() - started:.0f} s"
    console.print(f"[{style}]{status}[/]{when}", highlight=False)
