"""The real aws CLI against the SageMaker API: a training job created, awaited, listed and
described with `aws sagemaker ... --endpoint-url`, its data and model moved with `aws s3`."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

from tests.conftest import EXAMPLES, channel, make_image, training_request

COUNT_ROWS = """
import glob, json
rows = sum(len(open(p).readlines()) - 1 for p in glob.glob("/opt/ml/input/data/train/*.csv"))
print(f"rows={rows}")
json.dump({"rows": rows}, open("/opt/ml/model/rows.json", "w"))
"""
FAIL = """
open("/opt/ml/output/failure", "w").write("no data to learn from")
raise SystemExit(1)
"""


def create_job(aws: Any, tmp_path: Path, name: str, image: Path) -> Any:
    """Create the job with `aws sagemaker create-training-job` and wait for its end with
    botocore's waiter, as the CLI runs it; returns the wait's completed process."""
    request = training_request(
        name,
        image,
        OutputDataConfig={"S3OutputPath": "s3://cli-jobs/out"},
        InputDataConfig=[channel("train", "s3://cli-jobs/iris/")],
        HyperParameters={"depth": "3"},
    )
    body = tmp_path / f"{name}.json"
    body.write_text(json.dumps(request))
    create = ["sagemaker", "create-training-job", "--cli-input-json", f"file://{body}"]
    created = json.loads(aws(*create).stdout)
    assert created["TrainingJobArn"].endswith(f":training-job/{name}")
    wait = ["sagemaker", "wait", "training-job-completed-or-stopped", "--training-job-name", name]
    return aws(*wait, check=False)


def test_list_and_describe_training_jobs(aws: Any, tmp_path: Path) -> None:
    aws("s3", "mb", "s3://cli-jobs")
    aws("s3", "cp", str(EXAMPLES / "data" / "iris" / "iris.csv"), "s3://cli-jobs/iris/iris.csv")
    counting = make_image(tmp_path / "count", COUNT_ROWS)
    for name in ("cli-count-1", "cli-count-2"):
        waited = create_job(aws, tmp_path, name, counting)
        assert waited.returncode == 0, waited.stderr
    waited = create_job(aws, tmp_path, "cli-fails", make_image(tmp_path / "fail", FAIL))
    assert waited.returncode != 0  # the waiter's failure state: TrainingJobStatus Failed
    assert "terminal failure state" in waited.stderr

    # One job a page: the CLI follows NextToken itself and prints every job.
    listed = json.loads(aws("sagemaker", "list-training-jobs", "--page-size", "1").stdout)
    summaries = {s["TrainingJobName"]: s for s in listed["TrainingJobSummaries"]}
    assert set(summaries) == {"cli-count-1", "cli-count-2", "cli-fails"}
    assert summaries["cli-count-1"]["TrainingJobStatus"] == "Completed"
    assert summaries["cli-fails"]["TrainingJobStatus"] == "Failed"
    assert summaries["cli-count-2"]["TrainingJobArn"] == (
        "arn:aws:sagemaker:us-east-1:000000000000:training-job/cli-count-2"
    )
    # The service model's defaults: by CreationTime, Ascending.
    in_order = [s["TrainingJobName"] for s in listed["TrainingJobSummaries"]]
    assert in_order == ["cli-count-1", "cli-count-2", "cli-fails"]
    by_name = ["--sort-by", "Name", "--sort-order", "Descending"]
    completed = json.loads(
        aws("sagemaker", "list-training-jobs", "--status-equals", "Completed", *by_name).stdout
    )
    assert [s["TrainingJobName"] for s in completed["TrainingJobSummaries"]] == [
        "cli-count-2",
        "cli-count-1",
    ]

    described = json.loads(
        aws("sagemaker", "describe-training-job", "--training-job-name", "cli-count-1").stdout
    )
    assert described["TrainingJobStatus"] == "Completed"
    assert described["SecondaryStatus"] == "Completed"
    assert described["HyperParameters"] == {"depth": "3"}
    assert described["AlgorithmSpecification"]["TrainingImage"] == str(counting)
    assert described["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == (
        "s3://cli-jobs/iris/"
    )
    assert described["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    assert described["TrainingStartTime"] <= described["TrainingEndTime"]
    model_uri = described["ModelArtifacts"]["S3ModelArtifacts"]
    assert model_uri == "s3://cli-jobs/out/cli-count-1/output/model.tar.gz"
    aws("s3", "cp", model_uri, str(tmp_path / "model.tar.gz"))
    with tarfile.open(tmp_path / "model.tar.gz") as archive:
        member = archive.extractfile("rows.json")
        assert member is not None and json.load(member) == {"rows": 150}

    failed = json.loads(
        aws("sagemaker", "describe-training-job", "--training-job-name", "cli-fails").stdout
    )
    assert failed["TrainingJobStatus"] == "Failed"
    assert "no data to learn from" in failed["FailureReason"]

    missing = aws(
        "sagemaker", "describe-training-job", "--training-job-name", "cli-none", check=False
    )
    assert missing.returncode != 0
    assert "(ValidationException)" in missing.stderr and "DescribeTrainingJob" in missing.stderr
