"""The SageMaker control plane over real HTTP, driven by boto3 as a user's code would."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import (
    EXAMPLES,
    RunningServer,
    channel,
    make_image,
    training_request,
    wait_for_job,
)

JSON_11 = "application/x-amz-json-1.1"
IRIS = f"file://{EXAMPLES / 'data' / 'iris'}"

ECHO = """
import json, os, sys
print("argv", sys.argv[1:])
hp = json.load(open("/opt/ml/input/config/hyperparameters.json"))
print("hyperparameters", json.dumps(hp, sort_keys=True))
for i in range(3):
    print(f"epoch={i} loss={1.0 / (i + 1):.3f}")
print("job", os.environ["TRAINING_JOB_NAME"], os.environ["TRAINING_JOB_ARN"])
open("/opt/ml/model/model.txt", "w").write("trained")
open("/opt/ml/output/data/extra.txt", "w").write("side output")
"""


def test_boto3_runs_an_sdk_shaped_job(server: RunningServer, tmp_path: Path) -> None:
    sagemaker = server.client("sagemaker")
    image = make_image(tmp_path / "img", ECHO)
    request = training_request(
        "echo-1",
        image,
        HyperParameters={"lr": "0.1", "sagemaker_program": '"train.py"'},
        InputDataConfig=[channel("train", IRIS)],
    )
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "loss", "Regex": r"loss=([0-9.]+)"}
    ]
    arn = sagemaker.create_training_job(**request)["TrainingJobArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:training-job/echo-1"
    described = wait_for_job(sagemaker, "echo-1")
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert described["SecondaryStatus"] == "Completed"
    statuses = [t["Status"] for t in described["SecondaryStatusTransitions"]]
    assert statuses == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert all("EndTime" in t for t in described["SecondaryStatusTransitions"])
    assert described["HyperParameters"] == {"lr": "0.1", "sagemaker_program": '"train.py"'}
    assert (
        described["ModelArtifacts"]["S3ModelArtifacts"]
        == "s3://bucket/out/echo-1/output/model.tar.gz"
    )
    assert described["FinalMetricDataList"][0]["MetricName"] == "loss"
    assert described["FinalMetricDataList"][0]["Value"] == pytest.approx(0.333)
    assert described["TrainingStartTime"] <= described["TrainingEndTime"]
    assert "DebugHookConfig" not in described

    model = server.engine.store.get_bytes("bucket", "out/echo-1/output/model.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(model)) as archive:
        assert archive.getnames() == ["model.txt"]
        member = archive.extractfile("model.txt")
        assert member is not None and member.read() == b"trained"
    output = server.engine.store.get_bytes("bucket", "out/echo-1/output/output.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(output)) as archive:
        assert archive.getnames() == ["extra.txt"]


def test_logs_api_serves_the_job_log(server: RunningServer, tmp_path: Path) -> None:
    sagemaker, logs = server.client("sagemaker"), server.client("logs")
    sagemaker.create_training_job(**training_request("echo-logs", make_image(tmp_path / "i", ECHO)))
    wait_for_job(sagemaker, "echo-logs")
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs",
        logStreamNamePrefix="echo-logs/",
        orderBy="LogStreamName",
        limit=1,
    )["logStreams"]
    assert len(streams) == 1 and streams[0]["logStreamName"].startswith("echo-logs/algo-1-")
    first = logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs",
        logStreamName=streams[0]["logStreamName"],
        startFromHead=True,
    )
    messages = [e["message"] for e in first["events"]]
    assert "argv ['train']" in messages
    assert "epoch=2 loss=0.333" in messages
    # Reading on from the forward token gives nothing new, and the same token back.
    again = logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs",
        logStreamName=streams[0]["logStreamName"],
        startFromHead=True,
        nextToken=first["nextForwardToken"],
    )
    assert again["events"] == [] and again["nextForwardToken"] == first["nextForwardToken"]
    with pytest.raises(ClientError) as missing:
        logs.get_log_events(logGroupName="/nope", logStreamName="x")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_missing_job_is_a_validation_exception(server: RunningServer) -> None:
    sagemaker = server.client("sagemaker")
    for call in (sagemaker.describe_training_job, sagemaker.stop_training_job):
        with pytest.raises(ClientError) as error:
            call(TrainingJobName="no-such-job")
        assert error.value.response["Error"]["Code"] == "ValidationException"
        assert error.value.response["Error"]["Message"] == "Requested resource not found."
        assert error.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_duplicate_name_is_resource_in_use(server: RunningServer, tmp_path: Path) -> None:
    sagemaker = server.client("sagemaker")
    image = make_image(tmp_path / "i", "print('ok')")
    sagemaker.create_training_job(**training_request("dup", image))
    with pytest.raises(ClientError) as error:
        sagemaker.create_training_job(**training_request("dup", image))
    assert error.value.response["Error"]["Code"] == "ResourceInUse"
    wait_for_job(sagemaker, "dup")


def test_output_data_config_answers_an_empty_kms_key_id(
    server: RunningServer, tmp_path: Path
) -> None:
    """As SageMaker does when no key was given: the SageMaker SDK's Estimator.attach reads
    OutputDataConfig.KmsKeyId without a default."""
    sagemaker = server.client("sagemaker")
    image = make_image(tmp_path / "i", "print('ok')")
    sagemaker.create_training_job(**training_request("no-key", image))
    keyed = training_request("keyed", image)
    keyed["OutputDataConfig"]["KmsKeyId"] = "alias/models"
    sagemaker.create_training_job(**keyed)
    for name, key in (("no-key", ""), ("keyed", "alias/models")):
        described = wait_for_job(sagemaker, name)
        assert described["OutputDataConfig"] == {"S3OutputPath": "s3://bucket/out", "KmsKeyId": key}


def _bad(server: RunningServer, request: dict[str, Any]) -> str:
    sagemaker = server.client("sagemaker")
    with pytest.raises(ClientError) as error:
        sagemaker.create_training_job(**request)
    assert error.value.response["Error"]["Code"] == "ValidationException"
    return str(error.value.response["Error"]["Message"])


def test_bad_input_is_refused_and_changes_nothing(server: RunningServer, tmp_path: Path) -> None:
    image = make_image(tmp_path / "ok", "print('ok')")
    no_dockerfile = tmp_path / "empty-image"
    no_dockerfile.mkdir()
    # boto3 validates names client-side, so send the bad name straight over HTTP as well.
    response = server.post(
        "/",
        json.dumps(training_request("bad_name", image)).encode(),
        {"X-Amz-Target": "SageMaker.CreateTrainingJob", "Content-Type": JSON_11},
    )
    assert response.status_code == 400
    assert response.json()["__type"] == "ValidationException"
    assert "regular expression pattern" in response.json()["message"]

    too_many = {f"k{i}": "v" for i in range(101)}
    assert "100" in _bad(server, training_request("hp", image, HyperParameters=too_many))
    assert "has no Dockerfile" in _bad(server, training_request("img", no_dockerfile))
    missing = f"file://{tmp_path / 'nowhere'}"
    assert "does not exist" in _bad(
        server, training_request("inp", image, InputDataConfig=[channel("train", missing)])
    )
    unknown = training_request("typ", image)
    unknown["ResourceConfig"]["InstanceType"] = "ml.nope.large"
    assert (
        "at 'resourceConfig.instanceType' failed to satisfy constraint: Member must satisfy "
        "enum value set: [" in _bad(server, unknown)
    )
    secret = f"file://{server.settings.home}"
    assert "dockyard folder" in _bad(
        server, training_request("sec", image, InputDataConfig=[channel("train", secret)])
    )

    sagemaker = server.client("sagemaker")
    assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == []
    jobs_dir = server.settings.jobs_dir
    assert not jobs_dir.exists() or list(jobs_dir.iterdir()) == []


def test_list_pages_and_filters(server: RunningServer, tmp_path: Path) -> None:
    sagemaker = server.client("sagemaker")
    image = make_image(tmp_path / "i", "print('ok')")
    for i in range(5):
        sagemaker.create_training_job(**training_request(f"list-{i}", image))
    for i in range(5):
        wait_for_job(sagemaker, f"list-{i}")
    first = sagemaker.list_training_jobs(MaxResults=2, SortBy="Name", SortOrder="Descending")
    assert [j["TrainingJobName"] for j in first["TrainingJobSummaries"]] == ["list-4", "list-3"]
    second = sagemaker.list_training_jobs(
        MaxResults=2, SortBy="Name", SortOrder="Descending", NextToken=first["NextToken"]
    )
    assert [j["TrainingJobName"] for j in second["TrainingJobSummaries"]] == ["list-2", "list-1"]
    paginator = sagemaker.get_paginator("list_training_jobs")
    names = [
        j["TrainingJobName"]
        for page in paginator.paginate(PaginationConfig={"PageSize": 2})
        for j in page["TrainingJobSummaries"]
    ]
    assert sorted(names) == [f"list-{i}" for i in range(5)]
    assert (
        sagemaker.list_training_jobs(NameContains="st-3")["TrainingJobSummaries"][0][
            "TrainingJobName"
        ]
        == "list-3"
    )
    assert len(sagemaker.list_training_jobs(StatusEquals="Completed")["TrainingJobSummaries"]) == 5
    assert sagemaker.list_training_jobs(StatusEquals="Failed")["TrainingJobSummaries"] == []


def test_unknown_operation_and_bad_json(server: RunningServer) -> None:
    headers = {"Content-Type": JSON_11}
    unknown = server.post("/", b"{}", {**headers, "X-Amz-Target": "SageMaker.CreateWidget"})
    assert unknown.status_code == 400 and unknown.json()["__type"] == "UnknownOperationException"
    garbage = server.post(
        "/", b"{nope", {**headers, "X-Amz-Target": "SageMaker.DescribeTrainingJob"}
    )
    assert garbage.status_code == 400 and "not valid JSON" in garbage.json()["message"]
    assert "Traceback" not in garbage.text


TWO_HOSTS = """
import json
host = json.load(open("/opt/ml/input/config/resourceconfig.json"))["current_host"]
for i in range(3):
    print(f"step={i} loss={int(host[-1]) * 10 + i}", flush=True)
"""


def test_each_metric_point_keeps_the_host_that_printed_it(
    server: RunningServer, tmp_path: Path
) -> None:
    sagemaker = server.client("sagemaker")
    request = training_request("two-hosts", make_image(tmp_path / "img", TWO_HOSTS))
    request["ResourceConfig"]["InstanceCount"] = 2
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "loss", "Regex": r"loss=([0-9.]+)"}
    ]
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, "two-hosts")
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    metadata = server.engine.metadata
    for host, first in (("algo-1", 10.0), ("algo-2", 20.0)):
        series = metadata.metric_series("two-hosts", "loss", host=host)
        assert [p.value for p in series] == [first, first + 1, first + 2]
    assert metadata.training_metric_keys("two-hosts") == [
        ("two-hosts", "loss", "algo-1"),
        ("two-hosts", "loss", "algo-2"),
    ]
    # FinalMetricDataList: the last value printed, by either host.
    (final,) = described["FinalMetricDataList"]
    assert final["Value"] in (12.0, 22.0)
