"""Following a transform job as the SDK does: its log lines (CloudWatch Logs group
/aws/sagemaker/TransformJobs, streams `<job>/...`) or a dot per second without them, then
UnexpectedStatusException if it failed."""

from __future__ import annotations

import time
import warnings
from typing import Any, Protocol

from botocore.exceptions import ClientError

from dockyard.client import Client
from dockyard.sdk.exceptions import CapacityError, UnexpectedStatusException

LOG_GROUP = "/aws/sagemaker/TransformJobs"
TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
POLL_SECONDS = 0.3
DOT_SECONDS = 1.0


class TransformJobSession(Protocol):
    """What following a transform job needs of a Session (kept apart so the session module can
    use this one without an import circle)."""

    client: Client

    def describe_transform_job(self, job_name: str) -> dict[str, Any]: ...


class TransformLogTail:
    """Reads every stream of a transform job forward from where it last stopped.
    (client.logs.LogTail does the same for the training log group only.)"""

    def __init__(self, logs: Any, job: str) -> None:
        self.logs = logs
        self.job = job
        self.tokens: dict[str, str] = {}

    def poll(self) -> list[str]:
        """New messages of every stream, in time order."""
        try:
            streams = self.logs.describe_log_streams(
                logGroupName=LOG_GROUP, logStreamNamePrefix=f"{self.job}/"
            )["logStreams"]
        except ClientError:
            return []  # no instance has written a line yet
        events: list[tuple[int, str]] = []
        for stream in streams:
            name = stream["logStreamName"]
            while True:
                kwargs: dict[str, Any] = {
                    "logGroupName": LOG_GROUP,
                    "logStreamName": name,
                    "startFromHead": True,
                }
                if name in self.tokens:
                    kwargs["nextToken"] = self.tokens[name]
                response = self.logs.get_log_events(**kwargs)
                events.extend(
                    (event["timestamp"], event["message"]) for event in response["events"]
                )
                self.tokens[name] = response["nextForwardToken"]
                if not response["events"]:
                    break
        return [message for _at, message in sorted(events, key=lambda event: event[0])]


def follow_transform_job(
    session: TransformJobSession, job_name: str, *, wait: bool, logs: bool
) -> dict[str, Any]:
    """Print the job's log lines (or, with `wait` and no logs, a dot per second); with `wait`,
    keep going until the job ends, then check how it ended. Returns the last description."""
    tail = TransformLogTail(session.client.logs, job_name) if logs else None
    last_dot = time.monotonic()
    dotted = False
    while True:
        described = session.describe_transform_job(job_name)
        ended = described["TransformJobStatus"] in TERMINAL
        if tail is not None:
            # Lines written just before the status changed are read after it, not lost.
            for message in tail.poll():
                print(message, flush=True)
        elif wait and time.monotonic() - last_dot >= DOT_SECONDS:
            print(".", end="", flush=True)
            last_dot, dotted = time.monotonic(), True
        if not wait or ended:
            break
        time.sleep(POLL_SECONDS)
    if dotted:
        print(flush=True)
    if wait:
        check_transform_status(job_name, described)
    return described


def check_transform_status(job_name: str, described: dict[str, Any]) -> None:
    """Completed passes, Stopped warns; any other status raises UnexpectedStatusException."""
    status = described["TransformJobStatus"]
    if status == "Completed":
        return
    if status == "Stopped":
        warnings.warn(
            f"Transform job {job_name} ended with status 'Stopped' rather than 'Completed': its "
            "output may be incomplete",
            UserWarning,
            stacklevel=4,
        )
        return
    reason = described.get("FailureReason", "(No reason provided)")
    error = CapacityError if "CapacityError" in reason else UnexpectedStatusException
    raise error(
        f"Error for Transform job {job_name}: {status}. Reason: {reason}",
        allowed_statuses=["Completed", "Stopped"],
        actual_status=status,
    )
