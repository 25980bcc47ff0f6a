"""Following a transform job as the SDK does: its log lines (CloudWatch Logs group
/aws/sagemaker/TransformJobs, streams `<job>/...`) or a dot per second without them, then
UnexpectedStatusException if it failed."""

from __future__ import annotations

import time
from typing import Any, Protocol

from dockyard.client import Client
from dockyard.client.logs import TERMINAL, TRANSFORM_LOG_GROUP, LogTail
from dockyard.sdk._jobs import check_job_status

POLL_SECONDS = 0.3
DOT_SECONDS = 1.0


class TransformJobSession(Protocol):
    """What following a transform job needs of a Session (kept apart so the session module can
    use this one without an import circle)."""

    client: Client

    def describe_transform_job(self, job_name: str) -> dict[str, Any]: ...


def follow_transform_job(
    session: TransformJobSession, job_name: str, *, wait: bool, logs: bool
) -> dict[str, Any]:
    """Print the job's log lines (or, with `wait` and no logs, a dot per second); with `wait`,
    keep going until the job ends, then check how it ended. Returns the last description."""
    tail = LogTail(session.client, TRANSFORM_LOG_GROUP, job_name) if logs else None
    last_dot = time.monotonic()
    dotted = False
    while True:
        described = session.describe_transform_job(job_name)
        ended = described["TransformJobStatus"] in TERMINAL
        if tail is not None:
            # Lines written just before the status changed are read after it, not lost.
            for _at, _writer, message in tail.poll():
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
        check_job_status("Transform", job_name, described, "its output may be incomplete")
    return described
