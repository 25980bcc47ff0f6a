"""Reading log streams through the CloudWatch Logs API, as the SDK and any AWS tool do: a job's
host streams (`<job>/algo-1-<epoch>`) or every stream of an endpoint's group."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from dockyard.client import Client

TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TRANSFORM_LOG_GROUP = "/aws/sagemaker/TransformJobs"
ENDPOINT_LOG_GROUP = "/aws/sagemaker/Endpoints"
# Training and transform jobs end in the same statuses.
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})


def endpoint_log_group(endpoint: str) -> str:
    """Each endpoint has a group of its own, as on SageMaker."""
    return f"{ENDPOINT_LOG_GROUP}/{endpoint}"


class LogTail:
    """Reads every stream of `log_group` — only job `job`'s streams, when given — forward from
    where it last stopped."""

    def __init__(self, client: Client, log_group: str, job: str | None = None) -> None:
        self.client = client
        self.log_group = log_group
        # A job's streams are `<job>/...`; its name says nothing about who wrote a line.
        self.prefix = f"{job}/" if job else ""
        self.tokens: dict[str, str] = {}

    def poll(self) -> list[tuple[float, str, str]]:
        """New lines of every stream, oldest first, as (epoch seconds, writer, message)."""
        lines: list[tuple[float, str, str]] = []
        for stream in self._streams():
            writer = source_of(stream.removeprefix(self.prefix))
            while True:
                kwargs: dict[str, Any] = {
                    "logGroupName": self.log_group,
                    "logStreamName": stream,
                    "startFromHead": True,
                }
                if stream in self.tokens:
                    kwargs["nextToken"] = self.tokens[stream]
                response = self.client.logs.get_log_events(**kwargs)
                lines.extend(
                    (event["timestamp"] / 1000, writer, event["message"])
                    for event in response["events"]
                )
                self.tokens[stream] = response["nextForwardToken"]
                if not response["events"]:
                    break
        return sorted(lines, key=lambda line: line[0])

    def _streams(self) -> list[str]:
        names: list[str] = []
        kwargs: dict[str, Any] = {"logGroupName": self.log_group}
        if self.prefix:
            kwargs["logStreamNamePrefix"] = self.prefix
        while True:
            try:
                response = self.client.logs.describe_log_streams(**kwargs)
            except ClientError as exc:
                # CloudWatch makes a group with its first line: none yet is not an error.
                if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
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
