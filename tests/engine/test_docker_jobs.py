"""A training job and an endpoint on the docker runtime, through the real server and boto3: a
busybox image built from a folder trains (its log line in the job's log, its /opt/ml/model in
model.tar.gz), two hosts exchange a message by name, a host past its memory limit fails with a
reason that says so, and the trained model serves invocations through the router."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    RunningServer,
    model_artifacts,
    server_with_engine,
    training_request,
    wait_for_job,
)
from tests.containers import nothing_labelled

TRAIN = """#!/bin/sh
echo "training on $(hostname) with SM_NUM_CPUS=$SM_NUM_CPUS"
echo model-bytes > /opt/ml/model/x
"""

# SageMaker runs `serve`: busybox's nc as a persistent server runs one handler per connection.
SERVE = """#!/bin/sh
echo "serving on 8080"
exec nc -ll -p 8080 -e /bin/handler
"""

# One HTTP/1.1 request in, one answer out, then the connection closes.
HANDLER = r"""#!/bin/sh
read -r method path version
length=0
while read -r line; do
  line=${line%?}
  [ -z "$line" ] && break
  case "$line" in [Cc]ontent-[Ll]ength:*) length=${line#*: } ;; esac
done
body=""
[ "$length" -gt 0 ] && body=$(head -c "$length")
case "$method $path" in
  "GET /ping") answer="" ;;
  "POST /invocations") answer="model=$(cat /opt/ml/model/x) input=$body" ;;
  *) printf 'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'; exit 0 ;;
esac
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %s\r\n' "${#answer}"
printf 'Connection: close\r\n\r\n%s' "$answer"
"""


def busybox_image_folder(root: Path, busybox: str, programs: dict[str, str]) -> Path:
    """An image folder FROM the busybox image with `programs` in /bin (on its PATH)."""
    root.mkdir(parents=True)
    lines = [f"FROM {busybox}"]
    for name, text in programs.items():
        (root / name).write_text(text)
        (root / name).chmod(0o755)
        lines.append(f"COPY {name} /bin/{name}")
    (root / "Dockerfile").write_text("\n".join(lines) + "\n")
    return root


@pytest.fixture
def docker_server(clean_env: Path, container_engine: Any) -> Iterator[RunningServer]:
    yield from server_with_engine(clean_env, container_engine, runtime="docker")


@pytest.fixture
def small_docker_server(clean_env: Path, container_engine: Any) -> Iterator[RunningServer]:
    """A machine of half a GiB for dockyard: every host's memory limit is at most that."""
    yield from server_with_engine(clean_env, container_engine, runtime="docker", memory_gib=0.5)


def job_log(server: RunningServer, job: str) -> str:
    logs = server.client("logs")
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{job}/"
    )["logStreams"]
    lines = []
    for stream in streams:
        events = logs.get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs",
            logStreamName=stream["logStreamName"],
            startFromHead=True,
        )
        lines += [event["message"] for event in events["events"]]
    return "\n".join(lines)


def test_a_training_job_then_its_endpoint(
    docker_server: RunningServer, busybox: str, tmp_path: Path
) -> None:
    image = busybox_image_folder(
        tmp_path / "image", busybox, {"train": TRAIN, "serve": SERVE, "handler": HANDLER}
    )
    sagemaker = docker_server.client("sagemaker")
    sagemaker.create_training_job(**training_request("docker-train", image))
    described = wait_for_job(sagemaker, "docker-train", deadline_seconds=180)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert "training on algo-1 with SM_NUM_CPUS=" in job_log(docker_server, "docker-train")
    assert model_artifacts(docker_server, "docker-train")["x"] == b"model-bytes\n"
    assert nothing_labelled(docker_server.settings.home)

    sagemaker.create_model(
        ModelName="docker-model",
        PrimaryContainer={
            "Image": str(image),
            "ModelDataUrl": described["ModelArtifacts"]["S3ModelArtifacts"],
        },
        ExecutionRoleArn="arn:aws:iam::000000000000:role/dockyard",
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="docker-config",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": "docker-model",
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName="docker-endpoint", EndpointConfigName="docker-config")
    deadline = time.monotonic() + 120
    while (status := sagemaker.describe_endpoint(EndpointName="docker-endpoint"))[
        "EndpointStatus"
    ] == "Creating":
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert status["EndpointStatus"] == "InService", status.get("FailureReason")
    runtime = docker_server.client("sagemaker-runtime")
    for value in ("1,2,3", "4,5,6"):
        answer = runtime.invoke_endpoint(
            EndpointName="docker-endpoint", Body=value.encode(), ContentType="text/csv"
        )
        assert answer["Body"].read() == f"model=model-bytes input={value}".encode()
    sagemaker.delete_endpoint(EndpointName="docker-endpoint")
    deadline = time.monotonic() + 60
    while not nothing_labelled(docker_server.settings.home):
        assert time.monotonic() < deadline, "the endpoint's container or network is still there"
        time.sleep(0.2)


def test_two_hosts_exchange_a_message_by_name(
    docker_server: RunningServer, busybox: str, tmp_path: Path
) -> None:
    exchange = """#!/bin/sh
if [ "$(hostname)" = algo-1 ]; then
  # The handler reads to the end: nc alone may close on its own empty stdin first.
  nc -l -p 9000 -e sh -c 'cat > /opt/ml/model/received'
else
  for i in $(busybox seq 100); do echo "hello from $(hostname)" | nc algo-1 9000 && exit 0
  sleep 0.2; done; exit 1
fi
"""
    image = busybox_image_folder(tmp_path / "two", busybox, {"train": exchange})
    sagemaker = docker_server.client("sagemaker")
    request = training_request("docker-two", image)
    request["ResourceConfig"]["InstanceCount"] = 2
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, "docker-two", deadline_seconds=180)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert model_artifacts(docker_server, "docker-two")["received"] == b"hello from algo-2\n"
    assert nothing_labelled(docker_server.settings.home)


def test_a_host_past_its_memory_limit_fails_out_of_memory(
    small_docker_server: RunningServer, busybox: str, tmp_path: Path
) -> None:
    # The string doubles past the host's half GiB.
    hungry = '#!/bin/sh\necho start\nx=aaaaaaaa\nwhile true; do x="$x$x"; done\n'
    image = busybox_image_folder(tmp_path / "hungry", busybox, {"train": hungry})
    sagemaker = small_docker_server.client("sagemaker")
    sagemaker.create_training_job(**training_request("docker-oom", image))
    described = wait_for_job(sagemaker, "docker-oom", deadline_seconds=180)
    assert described["TrainingJobStatus"] == "Failed"
    assert "out of memory" in described["FailureReason"], described["FailureReason"]
    assert nothing_labelled(small_docker_server.settings.home)
