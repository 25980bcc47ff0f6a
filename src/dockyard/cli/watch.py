"""Watching endpoints from the terminal: their status changes while waiting, and their logs."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError
from rich.console import Console

from dockyard.cli.errors import error_code, is_not_found
from dockyard.client import Client

ENDPOINT_LOG_GROUP = "/aws/sagemaker/Endpoints"
# Statuses an endpoint leaves on its own; waiting stops at any other.
BUSY = {"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"}
POLL_SECONDS = 0.5


def endpoint_log_group(endpoint: str) -> str:
    return f"{ENDPOINT_LOG_GROUP}/{endpoint}"


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


class LogGroupTail:
    """Reads every stream of a log group (optionally under a prefix) forward from where it
    last stopped, through the CloudWatch Logs API as any AWS tool would."""

    def __init__(self, client: Client, group: str, prefix: str = "") -> None:
        self.client = client
        self.group = group
        self.prefix = prefix
        self.tokens: dict[str, str] = {}

    def poll(self) -> list[tuple[float, str, str]]:
        """New lines of every stream, oldest first, as (epoch seconds, source, message)."""
        lines: list[tuple[float, str, str]] = []
        for stream in self._streams():
            while True:
                kwargs: dict[str, Any] = {
                    "logGroupName": self.group,
                    "logStreamName": stream,
                    "startFromHead": True,
                }
                if stream in self.tokens:
                    kwargs["nextToken"] = self.tokens[stream]
                response = self.client.logs.get_log_events(**kwargs)
                # Under a job's prefix the job's name says nothing: `job/algo-1-<epoch>` → algo-1.
                source = source_of(stream.removeprefix(self.prefix))
                lines.extend(
                    (event["timestamp"] / 1000, source, event["message"])
                    for event in response["events"]
                )
                self.tokens[stream] = response["nextForwardToken"]
                if not response["events"]:
                    break
        return sorted(lines, key=lambda line: line[0])

    def _streams(self) -> list[str]:
        names: list[str] = []
        kwargs: dict[str, Any] = {"logGroupName": self.group}
        if self.prefix:
            kwargs["logStreamNamePrefix"] = self.prefix
        while True:
            try:
                response = self.client.logs.describe_log_streams(**kwargs)
            except ClientError as exc:
                # CloudWatch makes a group with its first line: none yet is not an error.
                if error_code(exc) == "ResourceNotFoundException":
                    return names
                raise
            names.extend(stream["logStreamName"] for stream in response["logStreams"])
            if not response.get("nextToken"):
                return names
            kwargs["nextToken"] = response["nextToken"]


def source_of(stream: str) -> str:
    """Who wrote a stream, from its name without the start epoch: `AllTraffic/AllTraffic-1-<epoch>`
    → `AllTraffic-1`, `AllTraffic/dockyard-<epoch>` → `AllTraffic/dockyard` (the platform's lines
    about that variant), `algo-1-<epoch>` → `algo-1`, `dockyard-<epoch>` → `dockyard`."""
    head, _, epoch = stream.rpartition("-")
    label = head if head and epoch.isdigit() else stream
    _, _, writer = label.partition("/")
    if not writer or writer.startswith("dockyard"):
        return label
    return writer
