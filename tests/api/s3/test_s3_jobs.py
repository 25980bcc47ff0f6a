"""The S3 API and training jobs share one store: data uploaded through the S3 API is a job's
channel, and the job's model.tar.gz is read back through the S3 API."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

from tests.conftest import RunningServer, channel, make_image, training_request, wait_for_job

# Reads its channel and leaves the data's total in the model folder.
PROGRAM = """
import os
total = 0
for name in sorted(os.listdir('/opt/ml/input/data/train')):
    with open(os.path.join('/opt/ml/input/data/train', name)) as f:
        total += sum(int(line) for line in f if line.strip())
with open('/opt/ml/model/total.txt', 'w') as out:
    out.write(str(total))
"""


def test_s3_api_data_trains_and_the_model_is_read_back(
    s3: Any, server: RunningServer, tmp_path: Path
) -> None:
    s3.create_bucket(Bucket="ml-data")
    s3.put_object(Bucket="ml-data", Key="train/a.csv", Body=b"1\n2\n3\n")
    s3.put_object(Bucket="ml-data", Key="train/b.csv", Body=b"10\n20\n")
    sagemaker = server.client("sagemaker")
    request = training_request(
        "from-s3-api",
        make_image(tmp_path / "img", PROGRAM),
        InputDataConfig=[channel("train", "s3://ml-data/train/")],
        OutputDataConfig={"S3OutputPath": "s3://ml-data/out"},
    )
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, "from-s3-api")
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    uri = described["ModelArtifacts"]["S3ModelArtifacts"]
    assert uri == "s3://ml-data/out/from-s3-api/output/model.tar.gz"
    listed = s3.list_objects_v2(Bucket="ml-data", Prefix="out/from-s3-api/", Delimiter="/")
    assert [p["Prefix"] for p in listed["CommonPrefixes"]] == ["out/from-s3-api/output/"]
    body = s3.get_object(Bucket="ml-data", Key="out/from-s3-api/output/model.tar.gz")["Body"]
    with tarfile.open(fileobj=io.BytesIO(body.read())) as archive:
        member = archive.extractfile("total.txt")
        assert member is not None and member.read() == b"36"
