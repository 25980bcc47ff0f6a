"""botocore's own SageMaker waiters against dockyard, and the runtime's answer for an endpoint
that is not InService yet (ModelNotReadyException, 429)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, WaiterError

from tests.api.test_endpoints_api import ECHO_SERVER
from tests.api.test_transform_jobs_api import make_line_model, transform_request
from tests.conftest import RunningServer, make_image, training_request

pytestmark = pytest.mark.slow

STARTUP_SECONDS = 3
FAST = {"Delay": 1, "MaxAttempts": 120}  # botocore's delays are 30-120 s; the acceptors are its


def _slow_echo_image(root: Path) -> Path:
    """The echo server, listening only after STARTUP_SECONDS: the sandbox sees none of the
    test's files, so the model's own start-up is what holds the endpoint in Creating."""
    folder = root / "slow-echo"
    folder.mkdir()
    program = f"import time\ntime.sleep({STARTUP_SECONDS})\n" + ECHO_SERVER
    (folder / "server.py").write_text(program)
    (folder / "Dockerfile").write_text(
        "FROM python:3.11-slim\nCOPY server.py /opt/program/server.py\n"
        'ENTRYPOINT ["python3", "/opt/program/server.py"]\n'
    )
    return folder


def test_training_job_waiter(server: RunningServer, tmp_path: Path) -> None:
    sagemaker = server.client("sagemaker")
    waiter = sagemaker.get_waiter("training_job_completed_or_stopped")
    good = make_image(tmp_path / "good", "print('trained')")
    sagemaker.create_training_job(**training_request("waits-ok", good))
    waiter.wait(TrainingJobName="waits-ok", WaiterConfig=FAST)
    assert sagemaker.describe_training_job(TrainingJobName="waits-ok")["TrainingJobStatus"] == (
        "Completed"
    )
    bad = make_image(tmp_path / "bad", "raise SystemExit(3)")
    sagemaker.create_training_job(**training_request("waits-failed", bad))
    with pytest.raises(WaiterError) as failed:
        waiter.wait(TrainingJobName="waits-failed", WaiterConfig=FAST)
    assert failed.value.last_response["TrainingJobStatus"] == "Failed"
    # No such job: the ValidationException acceptor ends the wait at once.
    started = time.monotonic()
    with pytest.raises(WaiterError) as missing:
        waiter.wait(TrainingJobName="no-such-job", WaiterConfig=FAST)
    assert missing.value.last_response["Error"]["Code"] == "ValidationException"
    assert time.monotonic() - started < 1


def test_endpoint_waiters_and_model_not_ready(server: RunningServer, tmp_path: Path) -> None:
    sagemaker, runtime = server.client("sagemaker"), server.client("sagemaker-runtime")
    sagemaker.create_model(
        ModelName="slow", PrimaryContainer={"Image": str(_slow_echo_image(tmp_path))}
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName="slow",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "slow", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large"},
        ],
    )  # fmt: skip
    sagemaker.create_endpoint(EndpointName="slow", EndpointConfigName="slow")
    assert sagemaker.describe_endpoint(EndpointName="slow")["EndpointStatus"] == "Creating"
    with pytest.raises(ClientError) as not_ready:
        runtime.invoke_endpoint(EndpointName="slow", Body=b"1", ContentType="text/csv")
    error = not_ready.value.response
    assert error["Error"]["Code"] == "ModelNotReadyException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert "Creating" in error["Error"]["Message"]
    assert isinstance(not_ready.value, runtime.exceptions.ModelNotReadyException)
    assert error["ResponseMetadata"]["RequestId"]
    sagemaker.get_waiter("endpoint_in_service").wait(EndpointName="slow", WaiterConfig=FAST)
    answer = runtime.invoke_endpoint(EndpointName="slow", Body=b"1", ContentType="text/csv")
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 200
    missing = runtime.exceptions.ValidationError
    with pytest.raises(missing):
        runtime.invoke_endpoint(EndpointName="no-such-endpoint", Body=b"1")
    sagemaker.delete_endpoint(EndpointName="slow")
    sagemaker.get_waiter("endpoint_deleted").wait(EndpointName="slow", WaiterConfig=FAST)
    with pytest.raises(ClientError):
        sagemaker.describe_endpoint(EndpointName="slow")


def test_endpoint_in_service_waiter_fails_on_a_failed_endpoint(
    server: RunningServer, tmp_path: Path
) -> None:
    sagemaker = server.client("sagemaker")
    broken = make_image(tmp_path / "broken", "raise SystemExit('no server here')")
    sagemaker.create_model(ModelName="broken", PrimaryContainer={"Image": str(broken)})
    sagemaker.create_endpoint_config(
        EndpointConfigName="broken",
        ProductionVariants=[
            {"VariantName": "AllTraffic", "ModelName": "broken", "InitialInstanceCount": 1,
             "InstanceType": "ml.m5.large"},
        ],
    )  # fmt: skip
    sagemaker.create_endpoint(EndpointName="broken", EndpointConfigName="broken")
    with pytest.raises(WaiterError) as failed:
        sagemaker.get_waiter("endpoint_in_service").wait(EndpointName="broken", WaiterConfig=FAST)
    assert failed.value.last_response["EndpointStatus"] == "Failed"


def test_transform_job_waiter(server: RunningServer, tmp_path: Path) -> None:
    sagemaker: Any = server.client("sagemaker")
    sagemaker.create_model(
        ModelName="lines", PrimaryContainer={"Image": str(make_line_model(tmp_path))}
    )
    source = tmp_path / "input"
    source.mkdir()
    (source / "a.csv").write_text("".join(f"{i},row{i}\n" for i in range(20)))
    request = transform_request("waits", source, tmp_path / "out")
    request["TransformResources"]["InstanceCount"] = 1
    sagemaker.create_transform_job(**request)
    sagemaker.get_waiter("transform_job_completed_or_stopped").wait(
        TransformJobName="waits", WaiterConfig=FAST
    )
    described = sagemaker.describe_transform_job(TransformJobName="waits")
    assert described["TransformJobStatus"] == "Completed"
    with pytest.raises(WaiterError):
        sagemaker.get_waiter("transform_job_completed_or_stopped").wait(
            TransformJobName="none", WaiterConfig=FAST
        )
