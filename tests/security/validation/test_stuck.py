"""Issue 8, part 7: an exception in any background thread that drives a resource ends that
resource in a status a user can act on, with the reason (found: an endpoint left Creating for
ever). The trigger is real: an image whose Dockerfile sets an environment value with a NUL byte
passes every API check (the API never sees it) and breaks the sandbox's start (Popen: "embedded
null byte"), an error no engine code expects."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dockyard.api.app import create_app
from dockyard.engine.core import Engine
from dockyard.settings import Settings
from tests.api.test_endpoints_api import make_echo_image
from tests.conftest import make_image
from tests.security.validation.conftest import InProcess
from tests.security.validation.wire import Api

pytestmark = pytest.mark.slow

SETTLED = 60.0  # seconds; every start here fails or serves within a few


def _break(image: Path) -> Path:
    """Give `image` an ENV whose value holds a NUL byte (a Dockerfile may contain one)."""
    dockerfile = image / "Dockerfile"
    lines = dockerfile.read_text().splitlines()
    lines.insert(1, "ENV BROKEN=a\x00b")
    dockerfile.write_text("\n".join(lines) + "\n")
    return image


def _until(describe: Callable[[], dict[str, Any]], key: str, passing: set[str]) -> dict[str, Any]:
    deadline = time.monotonic() + SETTLED
    while True:
        described = describe()
        if described.get(key) not in passing:
            return described
        assert time.monotonic() < deadline, f"still {described.get(key)} after {SETTLED} s"
        time.sleep(0.1)


def _endpoint(api: Api, name: str) -> dict[str, Any]:
    answer = api.sagemaker("DescribeEndpoint", {"EndpointName": name})
    assert answer.status == 200, answer.message
    return answer.parsed


def _ok(answer: Any) -> dict[str, Any]:
    assert answer.status == 200, answer.message
    return dict(answer.parsed)


def _model_and_config(api: Api, name: str, image: Path, count: int = 1) -> None:
    _ok(
        api.sagemaker("CreateModel", {"ModelName": name, "PrimaryContainer": {"Image": str(image)}})
    )
    variant = {"VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": count}
    _ok(
        api.sagemaker(
            "CreateEndpointConfig", {"EndpointConfigName": name, "ProductionVariants": [variant]}
        )
    )


def _serving(api: Api, name: str, image: Path) -> None:
    _model_and_config(api, name, image)
    _ok(api.sagemaker("CreateEndpoint", {"EndpointName": name, "EndpointConfigName": name}))
    described = _until(lambda: _endpoint(api, name), "EndpointStatus", {"Creating"})
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")


def test_endpoint_that_cannot_start_ends_failed(in_process: InProcess, tmp_path: Path) -> None:
    api = in_process.api
    _model_and_config(api, "broken", _break(make_echo_image(tmp_path)))
    _ok(api.sagemaker("CreateEndpoint", {"EndpointName": "broken", "EndpointConfigName": "broken"}))
    described = _until(lambda: _endpoint(api, "broken"), "EndpointStatus", {"Creating"})
    assert described["EndpointStatus"] == "Failed"
    assert "embedded null byte" in described["FailureReason"]
    assert "server's log" in described["FailureReason"]
    # Failed takes DeleteEndpoint, which ends with the endpoint gone.
    _ok(api.sagemaker("DeleteEndpoint", {"EndpointName": "broken"}))
    deadline = time.monotonic() + SETTLED
    while api.sagemaker("DescribeEndpoint", {"EndpointName": "broken"}).status == 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_update_that_cannot_start_rolls_back(in_process: InProcess, tmp_path: Path) -> None:
    api = in_process.api
    _serving(api, "blue", make_echo_image(tmp_path, "v1"))
    _model_and_config(api, "green", _break(make_echo_image(tmp_path, "v2")))
    _ok(api.sagemaker("UpdateEndpoint", {"EndpointName": "blue", "EndpointConfigName": "green"}))
    described = _until(
        lambda: _endpoint(api, "blue"), "EndpointStatus", {"Updating", "RollingBack"}
    )
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == "blue"
    assert "embedded null byte" in described["FailureReason"]
    answer = api.invoke("blue", b"still here", {"Content-Type": "text/plain"})
    assert answer.status == 200 and b"still here" in answer.body


def test_scaling_that_breaks_ends_in_service(in_process: InProcess, tmp_path: Path) -> None:
    """No API input can break a scale-out of a model that already serves, so the trigger is on
    disk: a file where the new instance's folder goes makes its start raise OSError."""
    api = in_process.api
    _serving(api, "scaled", make_echo_image(tmp_path))
    [variant_folder] = (in_process.settings.home / "endpoints" / "scaled").glob("*/AllTraffic")
    (variant_folder / "2").write_text("in the way")
    request = {
        "EndpointName": "scaled",
        "DesiredWeightsAndCapacities": [{"VariantName": "AllTraffic", "DesiredInstanceCount": 2}],
    }
    _ok(api.sagemaker("UpdateEndpointWeightsAndCapacities", request))
    described = _until(lambda: _endpoint(api, "scaled"), "EndpointStatus", {"Updating"})
    assert described["EndpointStatus"] == "InService"
    assert "NotADirectoryError" in described["FailureReason"]
    answer = api.invoke("scaled", b"one", {"Content-Type": "text/plain"})
    assert answer.status == 200


def test_restart_that_cannot_restore_ends_out_of_service(
    clean_env: Path, api_credentials: Any, tmp_path: Path
) -> None:
    """The image breaks while the server is down: the next server cannot bring it back."""
    settings = Settings(home=clean_env, stop_grace_seconds=2.0)
    image = make_echo_image(tmp_path)
    engine = Engine.open(settings)
    api = Api(api_credentials, app=create_app(engine, close_engine=False))
    try:
        _serving(api, "restored", image)
    finally:
        api.close()
        engine.close()
    _break(image)
    engine = Engine.open(settings)
    api = Api(api_credentials, app=create_app(engine, close_engine=False))
    try:
        described = _until(lambda: _endpoint(api, "restored"), "EndpointStatus", {"SystemUpdating"})
        assert described["EndpointStatus"] == "OutOfService"
        assert "embedded null byte" in described["FailureReason"]
    finally:
        api.close()
        engine.close()


def test_transform_job_that_cannot_start_ends_failed(in_process: InProcess, tmp_path: Path) -> None:
    api = in_process.api
    _model_and_config(api, "lines", _break(make_echo_image(tmp_path)))
    source = tmp_path / "input"
    source.mkdir()
    (source / "a.csv").write_text("1,2\n")
    request = {
        "TransformJobName": "broken",
        "ModelName": "lines",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(source)}}
        },
        "TransformOutput": {"S3OutputPath": str(tmp_path / "output")},
        "TransformResources": {"InstanceType": "local", "InstanceCount": 1},
    }
    _ok(api.sagemaker("CreateTransformJob", request))
    described = _until(
        lambda: _ok(api.sagemaker("DescribeTransformJob", {"TransformJobName": "broken"})),
        "TransformJobStatus",
        {"InProgress", "Stopping"},
    )
    assert described["TransformJobStatus"] == "Failed"
    assert "embedded null byte" in described["FailureReason"]


def test_training_job_that_cannot_start_ends_failed(in_process: InProcess, tmp_path: Path) -> None:
    api = in_process.api
    image = _break(make_image(tmp_path / "image", "print('trained')"))
    request = {
        "TrainingJobName": "broken",
        "RoleArn": "arn:aws:iam::111111111111:role/r",
        "AlgorithmSpecification": {"TrainingImage": str(image), "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "local", "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    _ok(api.sagemaker("CreateTrainingJob", request))
    described = _until(
        lambda: _ok(api.sagemaker("DescribeTrainingJob", {"TrainingJobName": "broken"})),
        "TrainingJobStatus",
        {"InProgress", "Stopping"},
    )
    assert described["TrainingJobStatus"] == "Failed"
    assert "null byte" in described["FailureReason"]
