"""The pure parts of the serving commands: script-mode environments, requests."""

from __future__ import annotations

from pathlib import Path

from dockyard.cli.job_models import script_environment
from dockyard.cli.transform import transform_request


def test_script_mode_hyperparameters_become_the_serving_environment(tmp_path: Path) -> None:
    encoded = {"sagemaker_program": '"train.py"', "sagemaker_submit_directory": '"s3://b/src.tgz"'}
    assert script_environment(encoded, None, None) == {
        "SAGEMAKER_PROGRAM": "train.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "s3://b/src.tgz",
    }
    # As `dockyard train --hp` passes them: plain text.
    plain = {"sagemaker_program": "train.py", "sagemaker_submit_directory": "file:///code"}
    assert script_environment(plain, None, None)["SAGEMAKER_SUBMIT_DIRECTORY"] == "file:///code"
    # Code baked into the image: nothing for the server to stage.
    baked = {"sagemaker_program": '"train.py"', "sagemaker_submit_directory": '"/opt/ml/code"'}
    assert script_environment(baked, None, None) == {"SAGEMAKER_PROGRAM": "train.py"}
    overridden = script_environment(encoded, "serve.py", str(tmp_path))
    assert overridden == {
        "SAGEMAKER_PROGRAM": "serve.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": tmp_path.as_uri(),
    }
    assert script_environment({"epochs": "3"}, None, None) == {}


def test_unset_transform_options_are_left_to_the_container() -> None:
    base = {"input": "s3://in/", "output": "s3://out/", "instance_type": "local"}
    minimal = transform_request("t", "m", instance_count=1, **base)
    assert minimal == {
        "TransformJobName": "t",
        "ModelName": "m",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://in/"}}
        },
        "TransformOutput": {"S3OutputPath": "s3://out/"},
        "TransformResources": {"InstanceType": "local", "InstanceCount": 1},
    }
    full = transform_request(
        "t", "m", instance_count=2, content_type="text/csv", split_type="Line",
        accept="text/csv", assemble_with="Line", strategy="MultiRecord", max_concurrent=4,
        max_payload=0, environment={"A": "1"}, join_source="Input", **base,
    )  # fmt: skip
    assert full["TransformInput"]["ContentType"] == "text/csv"
    assert full["TransformInput"]["SplitType"] == "Line"
    assert full["TransformOutput"] == {
        "S3OutputPath": "s3://out/",
        "Accept": "text/csv",
        "AssembleWith": "Line",
    }
    assert full["BatchStrategy"] == "MultiRecord" and full["MaxConcurrentTransforms"] == 4
    assert full["MaxPayloadInMB"] == 0  # 0 (unlimited) is a value, not "unset"
    assert full["Environment"] == {"A": "1"}
    assert full["DataProcessing"] == {"JoinSource": "Input"}
