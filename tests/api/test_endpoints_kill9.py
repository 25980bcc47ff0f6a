"""`kill -9` of the server while an endpoint serves: its sandboxes die with it, and the next
server brings the endpoint back InService without user action (DESIGN's restart bar: 10 s)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from dockyard.api.keys import face_key
from dockyard.client.local_server import start_background
from dockyard.settings import Settings
from tests.api.test_endpoints_api import make_echo_image, wait_for_endpoint
from tests.conftest import free_port
from tests.processes import gone


def _clients(url: str, settings: Settings) -> tuple[Any, Any]:
    key = face_key(settings)
    options = {
        "endpoint_url": url,
        "region_name": "us-east-1",
        "aws_access_key_id": key.access_key_id,
        "aws_secret_access_key": key.secret_access_key,
    }
    return boto3.client("sagemaker", **options), boto3.client("sagemaker-runtime", **options)


def _sandboxes_of(server_pid: int) -> set[int]:
    """bwrap processes whose parent is the server."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        parent = int(stat[stat.rindex(")") + 2 :].split()[1])
        if name == "bwrap" and parent == server_pid:
            found.add(int(entry))
    return found


@pytest.mark.slow
def test_kill_9_of_the_server_and_the_endpoint_comes_back(clean_env: Path, tmp_path: Path) -> None:
    settings = Settings(home=clean_env, port=free_port())
    first = start_background(settings)
    try:
        sagemaker, runtime = _clients(first.url, settings)
        sagemaker.create_model(
            ModelName="m", PrimaryContainer={"Image": str(make_echo_image(tmp_path))}
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName="c",
            ProductionVariants=[
                {"VariantName": "AllTraffic", "ModelName": "m", "InitialInstanceCount": 2,
                 "InstanceType": "ml.m5.large"}
            ],
        )  # fmt: skip
        sagemaker.create_endpoint(EndpointName="kept", EndpointConfigName="c")
        assert wait_for_endpoint(sagemaker, "kept")["EndpointStatus"] == "InService"
        sandboxes = _sandboxes_of(first.pid)
        assert len(sandboxes) == 2
    finally:
        os.kill(first.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not all(gone(pid) for pid in sandboxes):
        assert time.monotonic() < deadline, "sandboxes outlived the killed server"
        time.sleep(0.05)

    started = time.monotonic()
    second = start_background(settings)
    # server.json still named the killed server, on the same URL: the new one must be reported.
    assert second.pid != first.pid
    try:
        sagemaker, runtime = _clients(second.url, settings)
        described = wait_for_endpoint(sagemaker, "kept")
        elapsed = time.monotonic() - started
        print(f"InService {elapsed:.2f} s after starting the new server")
        assert described["EndpointStatus"] == "InService"
        assert elapsed < 10
        answer = runtime.invoke_endpoint(
            EndpointName="kept", Body=b"back", ContentType="text/plain"
        )
        assert json.loads(answer["Body"].read())["body"] == "back"
    finally:
        os.kill(second.pid, signal.SIGTERM)
        for _ in range(200):
            if gone(second.pid):
                break
            time.sleep(0.05)
