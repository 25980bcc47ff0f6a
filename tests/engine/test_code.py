"""Script-mode code: sagemaker_submit_directory staged into /opt/ml/code, safely."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from dockyard.engine.code import decoded, submit_directory
from tests.conftest import (
    RunningServer,
    make_image,
    model_artifacts,
    training_request,
    wait_for_job,
)

LIST_CODE = """
import json, os, pathlib
code = pathlib.Path("/opt/ml/code")
files = sorted(str(p.relative_to(code)) for p in code.rglob("*") if p.is_file())
pathlib.Path("/opt/ml/model/code.json").write_text(json.dumps(files))
"""


def test_the_hyperparameter_decides_and_is_json_decoded() -> None:
    assert decoded('"train.py"') == "train.py"
    assert decoded("train.py") == "train.py"
    assert decoded("10") == "10"
    assert submit_directory({"sagemaker_submit_directory": '"s3://b/src/sourcedir.tar.gz"'}) == (
        "s3://b/src/sourcedir.tar.gz"
    )
    assert submit_directory({"sagemaker_submit_directory": '"/opt/ml/code"'}) is None
    assert submit_directory({}) is None


def _seen_code(server: RunningServer, name: str) -> list[str]:
    return list(json.loads(model_artifacts(server, name)["code.json"]))


def test_a_local_folder_and_an_s3_archive_are_staged(server: RunningServer, tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "lib").mkdir(parents=True)
    (source / "train.py").write_text("print('hi')\n")
    (source / "lib" / "util.py").write_text("X = 1\n")
    sagemaker = server.client("sagemaker")
    image = make_image(tmp_path / "img", LIST_CODE)
    hps = {"sagemaker_submit_directory": json.dumps(f"file://{source}")}
    sagemaker.create_training_job(**training_request("code-folder", image, HyperParameters=hps))
    assert wait_for_job(sagemaker, "code-folder")["TrainingJobStatus"] == "Completed"
    assert _seen_code(server, "code-folder") == ["lib/util.py", "train.py"]

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        archive.add(source / "train.py", arcname="train.py")
        archive.add(source / "lib", arcname="lib")
    server.engine.store.create_bucket("code")
    server.engine.store.put_bytes("code", "job/source/sourcedir.tar.gz", buffer.getvalue())
    hps = {"sagemaker_submit_directory": '"s3://code/job/source/sourcedir.tar.gz"'}
    sagemaker.create_training_job(**training_request("code-s3", image, HyperParameters=hps))
    assert wait_for_job(sagemaker, "code-s3")["TrainingJobStatus"] == "Completed"
    assert _seen_code(server, "code-s3") == ["lib/util.py", "train.py"]


def test_an_archive_that_escapes_is_refused(server: RunningServer, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = b"owned"
        member = tarfile.TarInfo("../../escaped.txt")
        member.size = len(data)
        archive.addfile(member, io.BytesIO(data))
    bad = tmp_path / "sourcedir.tar.gz"
    bad.write_bytes(buffer.getvalue())
    sagemaker = server.client("sagemaker")
    hps = {"sagemaker_submit_directory": json.dumps(str(bad))}
    request = training_request(
        "evil-code", make_image(tmp_path / "img", LIST_CODE), HyperParameters=hps
    )
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, "evil-code")
    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"].startswith("ClientError: sagemaker_submit_directory")
    assert "refused" in described["FailureReason"]
    assert not list(server.settings.jobs_dir.rglob("escaped.txt"))


def test_missing_code_is_refused_up_front(server: RunningServer, tmp_path: Path) -> None:
    sagemaker = server.client("sagemaker")
    image = make_image(tmp_path / "img", LIST_CODE)
    for value in (f"file://{tmp_path / 'nope'}", "s3://code-bucket/missing/sourcedir.tar.gz"):
        if value.startswith("s3://"):
            server.engine.store.create_bucket("code-bucket")
        hps = {"sagemaker_submit_directory": json.dumps(value)}
        with pytest.raises(ClientError) as error:
            sagemaker.create_training_job(**training_request("no-code", image, HyperParameters=hps))
        assert "does not exist" in error.value.response["Error"]["Message"]


def test_a_folder_holding_dockyard_state_is_not_code(server: RunningServer, tmp_path: Path) -> None:
    sagemaker = server.client("sagemaker")
    image = make_image(tmp_path / "img", LIST_CODE)
    # DOCKYARD_HOME is under tmp_path: copying tmp_path into /opt/ml/code would expose it.
    for folder in (server.settings.home, tmp_path):
        hps = {"sagemaker_submit_directory": json.dumps(f"file://{folder}")}
        with pytest.raises(ClientError) as error:
            sagemaker.create_training_job(**training_request("leak", image, HyperParameters=hps))
        assert "dockyard folder" in error.value.response["Error"]["Message"]
    assert sagemaker.list_training_jobs()["TrainingJobSummaries"] == []
