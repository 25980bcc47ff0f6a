"""`kill -9` of a real server process on the docker runtime, mid-job and mid-serving: its
containers outlive it (the engine keeps them), and the next server on the same home removes them,
their networks and volumes, unmounts the hosts' volumes, fails the job with a reason and brings the
endpoint back InService on new containers; another home's containers on the same engine are left
alone. A server whose engine does not answer still starts, saying so in its log."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from dockyard.api.keys import face_key
from dockyard.client.local_server import start_background
from dockyard.engine.core import Engine
from dockyard.runtimes.docker_runtime import FOLDER_LABEL
from dockyard.settings import Settings
from tests.conftest import RunningServer, free_port, training_request, wait_for_job
from tests.containers import labelled, mounts_under, nothing_labelled, podman
from tests.engine.test_docker_jobs import HANDLER, SERVE, busybox_image_folder
from tests.processes import gone, stop

# Runs until the server's successor removes its container; says when it has started.
TRAIN = """#!/bin/sh
echo "training started on $(hostname)"
exec sleep 600
"""


def _clients(url: str, settings: Settings) -> tuple[Any, Any, Any]:
    key = face_key(settings)
    options = {
        "endpoint_url": url,
        "region_name": "us-east-1",
        "aws_access_key_id": key.access_key_id,
        "aws_secret_access_key": key.secret_access_key,
    }
    return (
        boto3.client("sagemaker", **options),
        boto3.client("sagemaker-runtime", **options),
        boto3.client("logs", **options),
    )


def _podman(*args: str) -> list[str]:
    done = subprocess.run([podman(), *args], capture_output=True, text=True, check=False)
    assert done.returncode == 0, f"podman {' '.join(args)}: {done.stderr}"
    return done.stdout.split()


def _volumes_of(containers: set[str]) -> set[str]:
    """The engine's volumes the containers use (the image's VOLUME makes one for each)."""
    names: set[str] = set()
    for container in containers:
        mounts = json.loads(" ".join(_podman("inspect", "--format", "{{json .Mounts}}", container)))
        names |= {m["Name"] for m in mounts if m.get("Type") == "volume"}
    return names


def _folders_of(containers: set[str]) -> set[str]:
    """The host folders (volume mount points) the containers were made for."""
    folders = set()
    for container in containers:
        labels = _podman("inspect", "--format", f'{{{{index .Config.Labels "{FOLDER_LABEL}"}}}}',
                         container)  # fmt: skip
        folders |= set(labels)
    return folders


def _wait(condition: Callable[[], object], what: str, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _in_service(sagemaker: Any, name: str, seconds: float = 120.0) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        described = dict(sagemaker.describe_endpoint(EndpointName=name))
        if described["EndpointStatus"] not in ("Creating", "SystemUpdating", "Updating"):
            return described
        assert time.monotonic() < deadline, f"endpoint {name} still {described['EndpointStatus']}"
        time.sleep(0.1)


def _log_has(logs: Any, job: str, words: str) -> bool:
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{job}/"
    )["logStreams"]
    for stream in streams:
        events = logs.get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs",
            logStreamName=stream["logStreamName"],
            startFromHead=True,
        )["events"]
        if any(words in event["message"] for event in events):
            return True
    return False


def _serve(sagemaker: Any, name: str, image: Path) -> None:
    sagemaker.create_model(
        ModelName=name,
        PrimaryContainer={"Image": str(image)},
        ExecutionRoleArn="arn:aws:iam::000000000000:role/dockyard",
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large"}
        ],
    )  # fmt: skip
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)


def _answer(runtime: Any, name: str, value: str) -> bytes:
    body = runtime.invoke_endpoint(EndpointName=name, Body=value.encode(), ContentType="text/csv")
    return bytes(body["Body"].read())


@pytest.mark.slow
def test_kill_9_mid_job_and_mid_serving_then_a_restart(
    clean_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    container_engine: Any,
    busybox: str,
) -> None:
    # The server process reads its runtime and engine from the environment, as a user's would.
    monkeypatch.setenv("DOCKYARD_RUNTIME", "docker")
    monkeypatch.setenv("DOCKER_HOST", container_engine.docker_host)
    monkeypatch.setenv("DOCKYARD_STOP_GRACE_SECONDS", "2")
    image = busybox_image_folder(
        tmp_path / "image", busybox, {"train": TRAIN, "serve": SERVE, "handler": HANDLER}
    )
    # An image's VOLUME: the engine makes an (unlabelled) volume for each container.
    with (image / "Dockerfile").open("a") as dockerfile:
        dockerfile.write("VOLUME /scratch\n")
    settings = Settings(home=clean_env, port=free_port())
    # Another home on the same engine, served by a server of its own; its name starts with
    # this home's, as a careless prefix match would take it for this home's.
    other_home = clean_env.with_name(clean_env.name + "-2")
    other = RunningServer(
        Settings(home=other_home, port=free_port(), runtime="docker",
                 docker_host=container_engine.docker_host, stop_grace_seconds=2.0)
    )  # fmt: skip
    first_pid = second_pid = None
    try:
        other_sagemaker = other.client("sagemaker")
        other_runtime = other.client("sagemaker-runtime")
        _serve(other_sagemaker, "elsewhere", image)

        first = start_background(settings)
        first_pid = first.pid
        sagemaker, runtime, logs = _clients(first.url, settings)
        sagemaker.create_training_job(**training_request("cut-short", image))
        _serve(sagemaker, "kept", image)
        assert _in_service(sagemaker, "kept")["EndpointStatus"] == "InService"
        assert _answer(runtime, "kept", "1,2") == b"model= input=1,2"
        _wait(lambda: _log_has(logs, "cut-short", "training started on algo-1"), "no training")
        assert _in_service(other_sagemaker, "elsewhere")["EndpointStatus"] == "InService"
        others = set(labelled("container", other_home, running=True))
        assert len(others) == 1

        before = set(labelled("container", clean_env, running=True))
        assert len(before) == 2  # the training host and the serving instance
        networks = set(labelled("network", clean_env))
        assert len(networks) == 2
        volumes = _volumes_of(before)
        assert len(volumes) == 2
        host_folders = _folders_of(before)
        assert host_folders == mounts_under(clean_env)
        job_folder = settings.jobs_dir / "cut-short"
        assert any(Path(folder).is_relative_to(job_folder) for folder in host_folders)

        os.kill(first.pid, signal.SIGKILL)
        _wait(lambda: gone(first.pid), "the killed server is still there", 10)
        # Unlike the process runtime's sandboxes, containers outlive the server that made them.
        time.sleep(0.5)
        assert set(labelled("container", clean_env, running=True)) == before

        started = time.monotonic()
        second = start_background(settings)
        second_pid = second.pid
        up = time.monotonic() - started
        assert second.pid != first.pid
        # The recover ran before the server answered: what the killed one made is gone.
        assert not set(labelled("container", clean_env)) & before
        assert not set(labelled("network", clean_env)) & networks
        assert not set(_podman("volume", "ls", "--format", "{{.Name}}")) & volumes
        for folder in host_folders:
            assert not os.path.ismount(folder), f"{folder} is still mounted"
        shutil.rmtree(job_folder)  # unmounted volumes: the job's folder can go
        assert not job_folder.exists()

        sagemaker, runtime, logs = _clients(second.url, settings)
        described = wait_for_job(sagemaker, "cut-short", deadline_seconds=10)
        assert described["TrainingJobStatus"] == "Failed"
        assert "server stopped while this job was running" in described["FailureReason"]

        assert _in_service(sagemaker, "kept")["EndpointStatus"] == "InService"
        in_service = time.monotonic() - started
        assert _answer(runtime, "kept", "3,4") == b"model= input=3,4"
        now = set(labelled("container", clean_env, running=True))
        assert len(now) == 1 and not now & before  # a new container serves
        # Every volume mounted under the home is a live container's: none is left over.
        assert mounts_under(clean_env) == _folders_of(now)
        print(f"server up {up:.2f} s after the start, endpoint InService after {in_service:.2f} s")
        # The recover itself: listed by label, removed at once.
        swept = re.findall(
            r"removed (\d+) containers and (\d+) networks a previous server .* \(([\d.]+) s\)",
            settings.server_log.read_text(),
        )
        assert [(count, networks) for count, networks, _ in swept] == [("2", "2")], swept
        assert float(swept[0][2]) < 5
        assert up < 15
        assert in_service < 30

        # The other home's endpoint was not touched: the same container answers.
        assert set(labelled("container", other_home, running=True)) == others
        assert _answer(other_runtime, "elsewhere", "5") == b"model= input=5"
        assert (
            other_sagemaker.describe_endpoint(EndpointName="elsewhere")["EndpointStatus"]
            == "InService"
        )
    finally:
        for pid in (first_pid, second_pid):
            if pid is not None:
                stop(pid)
        other.close()
    _wait(lambda: nothing_labelled(clean_env), "the stopped server left containers", 30)
    _wait(lambda: nothing_labelled(other_home), "the other server left containers", 30)


def test_a_server_starts_when_its_docker_engine_does_not_answer(
    clean_env: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(
        home=clean_env, runtime="docker", docker_host=f"unix://{tmp_path}/no-engine.sock"
    )
    with caplog.at_level(logging.WARNING):
        engine = Engine.open(settings)
    try:
        lines = [r.getMessage() for r in caplog.records if "not recovered" in r.getMessage()]
        assert len(lines) == 1, caplog.text
        assert "docker runtime" in lines[0] and "no-engine.sock" in lines[0]
    finally:
        engine.close()
