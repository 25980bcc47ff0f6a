"""Every SageMaker instance type where its operation allows it, from botocore's model; GPU types
on a machine without GPUs: on the CPU by default, or held or failed by DOCKYARD_GPU_SHORTAGE.

There is no GPU on the test machines. The only thing these tests pretend is the machine's GPU
count: it is pinned to 0 (DOCKYARD_GPUS, also the default) so they hold on a machine with GPUs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dockyard.api.validation import check_request, service_model
from dockyard.contract.errors import ValidationError
from dockyard.settings import Settings
from tests.api.test_endpoints_api import wait_for_endpoint
from tests.conftest import (
    RunningServer,
    free_port,
    make_image,
    model_artifacts,
    training_request,
    wait_for_job,
)

# The operation each enum belongs to, and where in its request the type goes.
OPERATIONS = {
    "CreateTrainingJob": "TrainingInstanceType",
    "CreateEndpointConfig": "ProductionVariantInstanceType",
    "CreateTransformJob": "TransformInstanceType",
}


def allowed(operation: str) -> list[str]:
    """The types botocore's model allows `operation` (dockyard keeps no list of its own)."""
    return list(service_model("sagemaker").shape_for(OPERATIONS[operation]).enum)


def request_for(operation: str, type_name: str) -> dict[str, Any]:
    if operation == "CreateTrainingJob":
        body = training_request("typed", Path("/images/any"))
        body["ResourceConfig"]["InstanceType"] = type_name
        return body
    if operation == "CreateEndpointConfig":
        variant = {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": type_name}
        return {"EndpointConfigName": "typed", "ProductionVariants": [variant]}
    return {
        "TransformJobName": "typed",
        "ModelName": "m",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in"}}
        },
        "TransformOutput": {"S3OutputPath": "s3://b/out"},
        "TransformResources": {"InstanceType": type_name, "InstanceCount": 1},
    }


CASES = [(operation, name) for operation in OPERATIONS for name in allowed(operation)]


@pytest.mark.parametrize(("operation", "type_name"), CASES, ids=[f"{o}-{t}" for o, t in CASES])
def test_every_type_is_accepted_where_its_operation_allows_it(
    operation: str, type_name: str
) -> None:
    check_request("sagemaker", operation, request_for(operation, type_name))


@pytest.mark.parametrize("operation", OPERATIONS)
@pytest.mark.parametrize("type_name", ["local", "local_gpu"])
def test_local_mode_names_are_accepted_everywhere(operation: str, type_name: str) -> None:
    check_request("sagemaker", operation, request_for(operation, type_name))


@pytest.mark.parametrize("operation", OPERATIONS)
def test_a_type_another_operation_allows_is_refused_in_sagemakers_words(operation: str) -> None:
    own = allowed(operation)
    others = sorted({t for other in OPERATIONS for t in allowed(other)} - set(own))
    assert others, f"every type of the other enums is allowed by {operation}"
    with pytest.raises(ValidationError) as refused:
        check_request("sagemaker", operation, request_for(operation, others[0]))
    assert f"Value '{others[0]}' at '" in refused.value.message
    assert f"Member must satisfy enum value set: [{', '.join(own)}]" in refused.value.message


def test_a_hosting_only_type_sent_to_training_is_a_validation_exception(
    server: RunningServer, tmp_path: Path
) -> None:
    assert "ml.t2.medium" in allowed("CreateEndpointConfig")
    assert "ml.t2.medium" not in allowed("CreateTrainingJob")
    sagemaker = server.client("sagemaker")
    request = training_request("hosting-only", make_image(tmp_path / "img", "print('no')"))
    request["ResourceConfig"]["InstanceType"] = "ml.t2.medium"
    with pytest.raises(ClientError) as refused:
        sagemaker.create_training_job(**request)
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert error["Message"] == (
        "1 validation error detected: Value 'ml.t2.medium' at 'resourceConfig.instanceType' "
        "failed to satisfy constraint: Member must satisfy enum value set: "
        f"[{', '.join(allowed('CreateTrainingJob'))}]"
    )
    assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == []


def test_every_hosting_type_makes_an_endpoint_config(server: RunningServer, tmp_path: Path) -> None:
    sagemaker = server.client("sagemaker")
    sagemaker.create_model(
        ModelName="m",
        PrimaryContainer={"Image": str(make_image(tmp_path / "img", "print('serve')"))},
        ExecutionRoleArn="arn:aws:iam::000000000000:role/r",
    )
    for number, type_name in enumerate(allowed("CreateEndpointConfig")):
        variant = {"VariantName": "AllTraffic", "ModelName": "m", "InstanceType": type_name}
        try:
            sagemaker.create_endpoint_config(
                EndpointConfigName=f"c{number}", ProductionVariants=[variant]
            )
        except ClientError as exc:
            pytest.fail(f"CreateEndpointConfig refused {type_name}: {exc}")


# -- running on a machine with no GPU ---------------------------------------------------------

REPORT = """
import json, os
names = ("SM_NUM_GPUS", "SM_NUM_CPUS")
json.dump({n: os.environ.get(n) for n in names}, open("/opt/ml/model/env.json", "w"))
"""


def start_server(home: Path, **settings: Any) -> RunningServer:
    # gpus=0 pins the machine's GPU count: the one thing about the machine these tests pretend.
    return RunningServer(
        Settings(home=home, port=free_port(), stop_grace_seconds=2.0, gpus=0, **settings)
    )


@pytest.fixture
def no_gpu_server(clean_env: Path) -> Iterator[RunningServer]:
    running = start_server(clean_env)
    try:
        yield running
    finally:
        running.close()


def job_log(server: RunningServer, job: str) -> list[str]:
    logs = server.client("logs")
    group = "/aws/sagemaker/TrainingJobs"
    (stream,) = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{job}/")[
        "logStreams"
    ]
    events = logs.get_log_events(
        logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
    )["events"]
    return [e["message"] for e in events]


@pytest.mark.slow
def test_a_gpu_training_type_runs_on_the_cpu_and_says_so(
    no_gpu_server: RunningServer, tmp_path: Path
) -> None:
    server = no_gpu_server
    sagemaker = server.client("sagemaker")
    request = training_request("p2", make_image(tmp_path / "img", REPORT))
    request["ResourceConfig"]["InstanceType"] = "ml.p2.xlarge"  # 4 vCPU, 61 GiB, 1 K80
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, "p2")
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    env = json.loads(model_artifacts(server, "p2")["env.json"])
    # Its 4 vCPUs are capped at the machine's, as for every type bigger than the machine.
    assert env == {"SM_NUM_GPUS": "0", "SM_NUM_CPUS": str(min(4, server.settings.cpus))}
    assert (
        "[dockyard] ml.p2.xlarge has 1 GPU and this machine has 0 for dockyard (DOCKYARD_GPUS): "
        "running on the CPU, with SM_NUM_GPUS=0. Set DOCKYARD_GPU_SHORTAGE=wait or "
        "DOCKYARD_GPU_SHORTAGE=fail on the server to hold or fail such jobs instead"
    ) in job_log(server, "p2")


@pytest.mark.slow
def test_an_endpoint_on_ml_t2_medium_answers(no_gpu_server: RunningServer, tmp_path: Path) -> None:
    from tests.api.test_endpoints_api import make_echo_image

    sagemaker = no_gpu_server.client("sagemaker")
    sagemaker.create_model(
        ModelName="echo",
        PrimaryContainer={"Image": str(make_echo_image(tmp_path))},
        ExecutionRoleArn="arn:aws:iam::000000000000:role/r",
    )
    variant = {"VariantName": "AllTraffic", "ModelName": "echo", "InstanceType": "ml.t2.medium"}
    sagemaker.create_endpoint_config(EndpointConfigName="echo", ProductionVariants=[variant])
    sagemaker.create_endpoint(EndpointName="echo", EndpointConfigName="echo")
    described = wait_for_endpoint(sagemaker, "echo")
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    runtime = no_gpu_server.client("sagemaker-runtime")
    answer = runtime.invoke_endpoint(EndpointName="echo", Body=b"1,2", ContentType="text/csv")
    assert json.loads(answer["Body"].read())["body"] == "1,2"


GPU_ENV_SERVER = r"""
import http.server, json, os
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def answer(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.answer(b"")
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.answer(json.dumps({"SM_NUM_GPUS": os.environ.get("SM_NUM_GPUS")}).encode())
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"""


def deploy_gpu_endpoint(server: RunningServer, tmp_path: Path, name: str) -> dict[str, Any]:
    image = make_image(tmp_path / name, GPU_ENV_SERVER)
    sagemaker = server.client("sagemaker")
    sagemaker.create_model(
        ModelName=name,
        PrimaryContainer={"Image": str(image)},
        ExecutionRoleArn="arn:aws:iam::000000000000:role/r",
    )
    variant = {"VariantName": "AllTraffic", "ModelName": name, "InstanceType": "ml.g4dn.xlarge"}
    sagemaker.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant])
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)
    return wait_for_endpoint(sagemaker, name)


@pytest.mark.slow
def test_a_gpu_endpoint_runs_on_the_cpu_and_its_instance_log_says_so(
    no_gpu_server: RunningServer, tmp_path: Path
) -> None:
    described = deploy_gpu_endpoint(no_gpu_server, tmp_path, "g4dn")
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    runtime = no_gpu_server.client("sagemaker-runtime")
    answer = runtime.invoke_endpoint(EndpointName="g4dn", Body=b"x", ContentType="text/csv")
    assert json.loads(answer["Body"].read()) == {"SM_NUM_GPUS": "0"}
    logs = no_gpu_server.client("logs")
    group = "/aws/sagemaker/Endpoints/g4dn"
    # Log lines reach the store in batches (every 0.2 s): on a busy machine, a little later.
    deadline = time.monotonic() + 10
    while not (
        streams := logs.describe_log_streams(
            logGroupName=group, logStreamNamePrefix="AllTraffic/AllTraffic-1-"
        )["logStreams"]
    ) and time.monotonic() < deadline:
        time.sleep(0.2)
    (stream,) = streams
    messages = [
        e["message"]
        for e in logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"])[
            "events"
        ]
    ]
    assert any(
        m.startswith("[dockyard] ml.g4dn.xlarge has 1 GPU and this machine has 0") for m in messages
    ), messages


@pytest.mark.slow
def test_wait_keeps_a_gpu_training_job_pending_until_stopped(
    clean_env: Path, tmp_path: Path
) -> None:
    server = start_server(clean_env, gpu_shortage="wait")
    try:
        sagemaker = server.client("sagemaker")
        request = training_request("held", make_image(tmp_path / "img", REPORT))
        request["ResourceConfig"]["InstanceType"] = "ml.p3.2xlarge"
        sagemaker.create_training_job(**request)
        deadline = time.monotonic() + 30
        while (described := sagemaker.describe_training_job(TrainingJobName="held"))[
            "SecondaryStatus"
        ] != "Pending":
            assert time.monotonic() < deadline, described
            time.sleep(0.05)
        assert described["TrainingJobStatus"] == "InProgress"
        assert described["SecondaryStatusTransitions"][-1]["StatusMessage"] == (
            "Waiting for GPUs: ml.p3.2xlarge has 1 GPU and this machine has 0 (DOCKYARD_GPUS); "
            "DOCKYARD_GPU_SHORTAGE=wait keeps such jobs Pending. Stop the job, or restart the "
            "server with DOCKYARD_GPU_SHORTAGE=cpu to run such jobs on the CPU"
        )
        # A CPU job is not held behind it.
        sagemaker.create_training_job(
            **training_request("cpu", make_image(tmp_path / "cpu", REPORT))
        )
        assert wait_for_job(sagemaker, "cpu")["TrainingJobStatus"] == "Completed"
        assert sagemaker.describe_training_job(TrainingJobName="held")["SecondaryStatus"] == (
            "Pending"
        )
        sagemaker.stop_training_job(TrainingJobName="held")
        assert wait_for_job(sagemaker, "held")["TrainingJobStatus"] == "Stopped"
    finally:
        server.close()


@pytest.mark.slow
def test_fail_fails_gpu_jobs_and_endpoints_naming_the_setting(
    clean_env: Path, tmp_path: Path
) -> None:
    server = start_server(clean_env, gpu_shortage="fail")
    try:
        sagemaker = server.client("sagemaker")
        request = training_request("refused", make_image(tmp_path / "img", REPORT))
        request["ResourceConfig"]["InstanceType"] = "ml.p2.xlarge"
        sagemaker.create_training_job(**request)
        described = wait_for_job(sagemaker, "refused")
        assert described["TrainingJobStatus"] == "Failed"
        assert described["FailureReason"] == (
            "CapacityError: ml.p2.xlarge has 1 GPU and this machine has 0 for dockyard "
            "(DOCKYARD_GPUS); the server's DOCKYARD_GPU_SHORTAGE=fail fails such jobs. Use a CPU "
            "instance type such as ml.m5.xlarge, or set DOCKYARD_GPU_SHORTAGE=cpu on the server "
            "to run GPU types on the CPU"
        )
        endpoint = deploy_gpu_endpoint(server, tmp_path, "refused-endpoint")
        assert endpoint["EndpointStatus"] == "Failed"
        assert "CapacityError: ml.g4dn.xlarge has 1 GPU" in endpoint["FailureReason"]
        assert "DOCKYARD_GPU_SHORTAGE=fail fails such jobs" in endpoint["FailureReason"]
    finally:
        server.close()
