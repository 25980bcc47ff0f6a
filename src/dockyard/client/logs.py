"""Reading a training job's log streams through the CloudWatch Logs API, as the SDK does."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from dockyard.client import Client

LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TERMINAL = {"Completed", "Failed", "Stopped"}


class LogTail:
    """Reads every host stream of a job forward from where it last stopped."""

    def __init__(self, client: Client, job: str) -> None:
        self.client = client
        self.job = job
        self.tokens: dict[str, str | None] = {}

    def poll(self) -> list[tuple[float, str, str]]:
        """New lines of every stream as (epoch seconds, host, message)."""
        lines: list[tuple[float, str, str]] = []
        try:
            streams = self.client.logs.describe_log_streams(
                logGroupName=LOG_GROUP, logStreamNamePrefix=f"{self.job}/"
            )["logStreams"]
        except ClientError:
            return lines
        for stream in streams:
            name = stream["logStreamName"]
            while True:
                kwargs: dict[str, Any] = {
                    "logGroupName": LOG_GROUP,
                    "logStreamName": name,
                    "startFromHead": True,
                }
                token = self.tokens.get(name)
                if token:
                    kwargs["nextToken"] = token
                response = self.client.logs.get_log_events(**kwargs)
                host = name.split("/", 1)[1].rsplit("-", 1)[0]
                lines.extend(
                    (event["timestamp"] / 1000, host, event["message"])
                    for event in response["events"]
                )
                self.tokens[name] = response["nextForwardToken"]
                if not response["events"]:
                    break
        return lines
