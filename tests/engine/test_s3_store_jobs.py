"""Training jobs against an S3-compatible store (a real moto_server): staging downloads, uploads."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from dockyard.settings import Settings
from tests.conftest import (
    RunningServer,
    channel,
    free_port,
    make_image,
    training_request,
    wait_for_job,
)

COUNT_FILES = """
import json, pathlib
files = sorted(str(p.relative_to("/opt/ml/input/data/train"))
               for p in pathlib.Path("/opt/ml/input/data/train").rglob("*") if p.is_file())
pathlib.Path("/opt/ml/model/files.json").write_text(json.dumps(files))
"""


@pytest.fixture
def s3_server(
    clean_env: Path, moto_endpoint: str, moto_credentials: None
) -> Iterator[RunningServer]:
    settings = Settings(
        home=clean_env,
        port=free_port(),
        store="s3",
        s3_endpoint_url=moto_endpoint,
        s3_access_key_id="testing",
        s3_secret_access_key="testing",
        stop_grace_seconds=2.0,
    )
    running = RunningServer(settings)
    try:
        yield running
    finally:
        running.close()


def test_a_job_stages_from_s3_and_uploads_its_model_there(
    s3_server: RunningServer, moto_endpoint: str, tmp_path: Path
) -> None:
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket="s3-jobs")
    s3.put_object(Bucket="s3-jobs", Key="data/train/a.csv", Body=b"1,2\n")
    s3.put_object(Bucket="s3-jobs", Key="data/train/nested/b.csv", Body=b"3,4\n")
    sagemaker = s3_server.client("sagemaker")
    image = make_image(tmp_path / "img", COUNT_FILES)
    for name in ("from-s3-1", "from-s3-2"):
        request = training_request(
            name,
            image,
            InputDataConfig=[channel("train", "s3://s3-jobs/data/train")],
            OutputDataConfig={"S3OutputPath": "s3://s3-jobs/out"},
        )
        sagemaker.create_training_job(**request)
        described = wait_for_job(sagemaker, name)
        assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
        body = s3.get_object(Bucket="s3-jobs", Key=f"out/{name}/output/model.tar.gz")["Body"].read()
        with tarfile.open(fileobj=io.BytesIO(body)) as archive:
            member = archive.extractfile("files.json")
            assert member is not None
            assert json.loads(member.read()) == ["a.csv", "nested/b.csv"]
    # Both jobs staged the same two objects; the content cache holds them once.
    cached = [p for p in (s3_server.settings.cache_dir / "s3").rglob("*") if p.is_file()]
    assert len(cached) == 2


def test_a_missing_output_bucket_is_refused_up_front(
    s3_server: RunningServer, tmp_path: Path
) -> None:
    sagemaker = s3_server.client("sagemaker")
    request = training_request(
        "no-bucket",
        make_image(tmp_path / "img", "print('x')"),
        OutputDataConfig={"S3OutputPath": "s3://no-such-bucket-here/out"},
    )
    with pytest.raises(sagemaker.exceptions.ClientError) as error:
        sagemaker.create_training_job(**request)
    assert "no-such-bucket-here does not exist" in error.value.response["Error"]["Message"]
