"""Running a training job whose program is a shell script, as the security review did, and
reading back what it printed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import RunningServer, make_image, training_request, wait_for_job


def run_script_job(
    server: RunningServer,
    tmp_path: Path,
    name: str,
    script: str,
    *,
    deadline: float = 120.0,
    as_entrypoint: bool = False,
    **changes: Any,
) -> tuple[dict[str, Any], list[str]]:
    """Run `script` with /bin/sh, as the image's program or (`as_entrypoint`, as the security
    review did; SageMaker allows 256 characters there) as the job's ContainerEntrypoint; the
    job's description and log."""
    if as_entrypoint:
        request = training_request(name, make_image(tmp_path / name, "", language="sh"), **changes)
        request["AlgorithmSpecification"]["ContainerEntrypoint"] = ["/bin/sh", "-c", script]
    else:
        image = make_image(tmp_path / name, script, language="sh")
        request = training_request(name, image, **changes)
    sagemaker = server.client("sagemaker")
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, name, deadline_seconds=deadline)
    return described, job_log(server, name)


def job_log(server: RunningServer, name: str) -> list[str]:
    """Every line of the job's log streams (algo-1 first), dockyard's own lines left out."""
    logs = server.client("logs")
    group = "/aws/sagemaker/TrainingJobs"
    streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{name}/")
    lines: list[str] = []
    for stream in sorted(s["logStreamName"] for s in streams["logStreams"]):
        events = logs.get_log_events(
            logGroupName=group, logStreamName=stream, startFromHead=True, limit=10000
        )["events"]
        lines += [e["message"] for e in events if not e["message"].startswith("[dockyard]")]
    return lines
