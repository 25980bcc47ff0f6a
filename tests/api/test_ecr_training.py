"""The seed flow to the end: an image built with `dockyard images build`, a repository made with
`aws ecr create-repository`, `aws ecr get-login-password | podman login`, tag and push; then
dockyard.sdk's Estimator with the ECR URI trains from the registry's copy (the engine's own copies
removed first, so it must pull), and `aws ecr describe-images` lists what ran."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api.conftest import AWS, aws_env
from tests.conftest import RunningServer, model_artifacts, server_with_engine
from tests.containers import podman
from tests.engine.test_docker_jobs import busybox_image_folder, job_log

pytestmark = pytest.mark.slow

TRAIN = """#!/bin/sh
echo "trained from the registry's copy"
echo "$TRAINING_JOB_NAME" > /opt/ml/model/ran.txt
"""
ACCOUNT_URI = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


@pytest.fixture
def server(clean_env: Path, container_engine: Any) -> Iterator[RunningServer]:
    """The default server (process runtime by default) with a container engine to reach: an ECR
    URI that names no framework chooses the docker runtime by itself."""
    yield from server_with_engine(clean_env, container_engine)


def _run(command: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    done = subprocess.run(
        command, env=env, input=stdin, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{' '.join(command)}: {done.stdout}\n{done.stderr}"
    return done.stdout


def test_an_image_pushed_to_ecr_trains_through_the_sdk(
    server: RunningServer,
    container_engine: Any,
    busybox: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {**aws_env(server, tmp_path), "DOCKER_HOST": container_engine.docker_host}
    aws = [str(AWS), "--endpoint-url", server.url]
    dockyard = [str(Path(sys.executable).parent / "dockyard")]
    repository = f"seed-{uuid.uuid4().hex[:8]}"
    local_name = f"localhost/{repository}:latest"

    folder = busybox_image_folder(tmp_path / "image", busybox, {"train": TRAIN})
    built = _run([*dockyard, "images", "build", str(folder), "-t", local_name], env)
    assert "Successfully tagged" in built or local_name in built, built

    created = json.loads(
        _run([*aws, "ecr", "create-repository", "--repository-name", repository], env)
    )
    uri = created["repository"]["repositoryUri"]
    registry = uri.split("/", 1)[0]
    password = _run([*aws, "ecr", "get-login-password"], env).strip()
    authfile = str(tmp_path / "auth.json")
    # Plain HTTP on loopback (README: Images and the ECR API).
    insecure = ["--tls-verify=false", "--authfile", authfile]
    login = _run(
        [podman(), "login", *insecure, "--username", "AWS", "--password-stdin", registry],
        env,
        stdin=password,
    )
    assert "Login Succeeded" in login
    _run([podman(), "tag", local_name, f"{uri}:latest"], env)
    _run([podman(), "push", *insecure, f"{uri}:latest"], env)
    # Nothing of it left in the engine: the job can only run what the registry holds.
    _run([podman(), "rmi", f"{uri}:latest", local_name], env)

    monkeypatch.setenv("DOCKYARD_ENDPOINT_URL", server.url)
    from dockyard import sdk

    estimator = sdk.estimator.Estimator(
        image_uri=f"{ACCOUNT_URI}/{repository}:latest",
        role="arn:aws:iam::123456789012:role/SageMakerRole",
        instance_count=1,
        instance_type="ml.m5.large",
        output_path="s3://seed-bucket/out",
    )
    estimator.fit(wait=True, logs=False)
    job = estimator.latest_training_job.name  # type: ignore[union-attr]
    described = server.client("sagemaker").describe_training_job(TrainingJobName=job)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    log = job_log(server, job)
    assert f"pulling {uri}:latest (for {ACCOUNT_URI}/{repository}:latest)" in log
    assert "trained from the registry's copy" in log
    assert model_artifacts(server, job)["ran.txt"] == f"{job}\n".encode()

    details = json.loads(
        _run([*aws, "ecr", "describe-images", "--repository-name", repository], env)
    )["imageDetails"]
    assert [d["imageTags"] for d in details] == [["latest"]]
    pulled = container_engine.client.images.get(f"{uri}:latest")
    assert pulled.attrs["RepoDigests"], pulled.attrs
    assert any(details[0]["imageDigest"] in digest for digest in pulled.attrs["RepoDigests"])
    container_engine.client.images.remove(f"{uri}:latest", force=True)
