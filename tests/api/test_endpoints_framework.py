"""A framework image serves script-mode inference code with dockyard.serving in the sandbox."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.api.test_endpoints_api import wait_for_endpoint
from tests.conftest import RunningServer, free_port

INFERENCE = """
import json, os

def model_fn(model_dir):
    with open(os.path.join(model_dir, "weights.json")) as f:
        return json.load(f)

def input_fn(body, content_type):
    # As in sagemaker-inference, CSV and JSON bodies arrive decoded (str).
    if content_type == "text/csv":
        return [[float(v) for v in line.split(",")] for line in body.splitlines()]
    return json.loads(body)["rows"]

def predict_fn(rows, model):
    return [sum(w * x for w, x in zip(model["w"], row)) for row in rows]
"""


@pytest.fixture
def framework_server(clean_env: Path, shared_envs_dir: Path) -> Iterator[RunningServer]:
    from dockyard.settings import Settings

    settings = Settings(home=clean_env, port=free_port(), envs_dir=shared_envs_dir)
    running = RunningServer(settings)
    try:
        yield running
    finally:
        running.close()


@pytest.mark.slow
def test_framework_model_serves_inference_code(
    framework_server: RunningServer, tmp_path: Path
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "inference.py").write_text(INFERENCE)
    weights = tmp_path / "weights.json"
    weights.write_text(json.dumps({"w": [1.0, 10.0]}))
    archive = tmp_path / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(weights, arcname="weights.json")
    sagemaker = framework_server.client("sagemaker")
    sagemaker.create_model(
        ModelName="linear",
        PrimaryContainer={
            "Image": "dockyard/python:3.11",
            "ModelDataUrl": archive.as_uri(),
            "Environment": {
                "SAGEMAKER_PROGRAM": "inference.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": code.as_uri(),
            },
        },
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="linear",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "linear", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large"}
        ],
    )  # fmt: skip
    sagemaker.create_endpoint(EndpointName="linear", EndpointConfigName="linear")
    described = wait_for_endpoint(sagemaker, "linear", deadline=240)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    runtime = framework_server.client("sagemaker-runtime")
    answer = runtime.invoke_endpoint(
        EndpointName="linear", Body=b"1,2\n3,4", ContentType="text/csv", Accept="text/csv"
    )
    assert answer["Body"].read().decode().split() == ["21.0", "43.0"]
    answer = runtime.invoke_endpoint(
        EndpointName="linear",
        Body=json.dumps({"rows": [[1, 1]]}).encode(),
        ContentType="application/json",
        Accept="application/json",
    )
    assert json.loads(answer["Body"].read()) == [11.0]
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(
            EndpointName="linear", Body=b"1,2", ContentType="text/csv", Accept="image/png"
        )
    assert raised.value.response["OriginalStatusCode"] == 406
