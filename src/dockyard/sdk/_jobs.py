"""Following a training job as the SageMaker SDK prints it: `<time> <Status> - <message>` lines,
every host's log lines (coloured per host on a terminal or in a notebook), the training seconds at
the end, and UnexpectedStatusException when the job failed. `Job` and `check_job_status` serve
transform jobs too."""

from __future__ import annotations

import sys
import time
import warnings
from datetime import UTC, datetime
from typing import Any, Generic, Literal, Protocol, TypeVar

from dockyard.client import Client
from dockyard.client.logs import TERMINAL, TRAINING_LOG_GROUP, LogTail
from dockyard.sdk.exceptions import CapacityError, UnexpectedStatusException


class JobSession(Protocol):
    """What following a job needs of a Session (kept apart so the session module can use this
    one without an import circle)."""

    client: Client

    def describe_training_job(self, job_name: str) -> dict[str, Any]: ...

    def stop_training_job(self, job_name: str) -> None: ...


LOG_TYPES = ("All", "None", "Training", "Rules")
POLL_SECONDS = 0.3
# A status whose message keeps changing (transfer progress) is reprinted at most this often.
MESSAGE_REPEAT_SECONDS = 15.0
_HOST_COLORS = (34, 35, 32, 36, 33)
TRAINING_STOPPED = (
    "it was stopped or ran past MaxRuntimeInSeconds; check that its model is what you expect"
)


SessionT = TypeVar("SessionT")


class Job(Generic[SessionT]):
    """A job a session started, known by its name; TrainingJob and TransformJob say how theirs
    is described, waited for and stopped."""

    def __init__(self, sagemaker_session: SessionT, job_name: str) -> None:
        self.sagemaker_session = sagemaker_session
        self.job_name = job_name

    @property
    def name(self) -> str:
        return self.job_name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.job_name!r})"


class TrainingJob(Job[JobSession]):
    """The job an estimator started (`estimator.latest_training_job`)."""

    def describe(self) -> dict[str, Any]:
        return self.sagemaker_session.describe_training_job(self.job_name)

    def wait(self, logs: str | bool = "All") -> dict[str, Any]:
        """Follow the job until it ends; raise UnexpectedStatusException if it failed."""
        return follow_job(self.sagemaker_session, self.job_name, wait=True, log_type=logs)

    def stop(self) -> None:
        self.sagemaker_session.stop_training_job(self.job_name)


def normalise_log_type(logs: str | bool | None) -> str:
    """The SDK's `logs`: "All", "None", "Training" or "Rules"; True and False mean All and None."""
    if logs is True:
        return "All"
    if logs is False or logs is None:
        return "None"
    if logs not in LOG_TYPES:
        raise ValueError(f"logs={logs!r}: use one of {', '.join(LOG_TYPES)} (or True/False)")
    return logs


def follow_job(
    session: JobSession,
    job_name: str,
    *,
    wait: bool,
    log_type: str | bool | None = "All",
    timeout: float | None = None,
) -> dict[str, Any]:
    """Print the job's status lines (and its log lines unless log_type is None/Rules) in time
    order; with `wait`, keep going until the job ends, then check how it ended. Returns the last
    DescribeTrainingJob response."""
    show_logs = normalise_log_type(log_type) in ("All", "Training")
    tail = LogTail(session.client, TRAINING_LOG_GROUP, job_name) if show_logs else None
    colour = sys.stdout.isatty() or "ipykernel" in sys.modules
    deadline = time.monotonic() + timeout if timeout else None
    printed, last_message, last_printed_at = 0, "", 0.0
    while True:
        described = session.describe_training_job(job_name)
        transitions = described.get("SecondaryStatusTransitions", [])
        lines: list[tuple[float, int, str]] = [
            (t["StartTime"].timestamp(), 0, _status_line(t["StartTime"], t))
            for t in transitions[printed:]
        ]
        now = time.time()
        if transitions and len(transitions) == printed:
            current = transitions[-1]
            changed = current.get("StatusMessage", "") != last_message
            if changed and now - last_printed_at >= MESSAGE_REPEAT_SECONDS:
                lines.append((now, 0, _status_line(datetime.now(UTC), current)))
        if tail is not None:
            lines.extend((at, 1, _coloured(host, text, colour)) for at, host, text in tail.poll())
        for _at, _kind, text in sorted(lines, key=lambda line: line[:2]):
            print(text, flush=True)
        if any(kind == 0 for _at, kind, _text in lines):
            last_printed_at = now
            last_message = transitions[-1].get("StatusMessage", "")
        printed = len(transitions)
        status = described["TrainingJobStatus"]
        if not wait or status in TERMINAL:
            break
        if deadline is not None and time.monotonic() > deadline:
            print(f"Timeout Exceeded. {timeout} seconds elapsed.", flush=True)
            break
        time.sleep(POLL_SECONDS)
    if wait:
        check_job_status("Training", job_name, described, TRAINING_STOPPED)
        if show_logs:
            _print_seconds(described)
    return described


def check_job_status(
    kind: Literal["Training", "Transform"], job_name: str, described: dict[str, Any], stopped: str
) -> None:
    """How a training or transform job ended, as the SDK checks it: Completed passes, Stopped
    warns (`stopped` says what that may mean), any other status raises UnexpectedStatusException
    (CapacityError when the reason names it)."""
    status = described[f"{kind}JobStatus"]
    if status == "Completed":
        return
    if status == "Stopped":
        warnings.warn(
            f"{kind} job {job_name} ended with status 'Stopped' rather than 'Completed': {stopped}",
            UserWarning,
            stacklevel=4,
        )
        return
    reason = described.get("FailureReason", "(No reason provided)")
    error = CapacityError if "CapacityError" in reason else UnexpectedStatusException
    raise error(
        f"Error for {kind} job {job_name}: {status}. Reason: {reason}",
        allowed_statuses=["Completed", "Stopped"],
        actual_status=status,
    )


def _status_line(at: datetime, transition: dict[str, Any]) -> str:
    stamp = at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp} {transition['Status']} - {transition.get('StatusMessage', '')}"


def _coloured(host: str, text: str, colour: bool) -> str:
    if not colour:
        return text
    number = host.rpartition("-")[2]
    index = int(number) - 1 if number.isdigit() else 0
    return f"\x1b[{_HOST_COLORS[index % len(_HOST_COLORS)]}m{text}\x1b[0m"


def _print_seconds(described: dict[str, Any]) -> None:
    hosts = described["ResourceConfig"].get("InstanceCount", 1)
    if described.get("TrainingTimeInSeconds") is not None:
        print("Training seconds:", described["TrainingTimeInSeconds"] * hosts, flush=True)
    if described.get("BillableTimeInSeconds") is not None:
        print("Billable seconds:", described["BillableTimeInSeconds"] * hosts, flush=True)
