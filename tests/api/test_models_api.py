"""CreateModel / CreateEndpointConfig and their Describe, List and Delete, through boto3."""

from __future__ import annotations

from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from tests.conftest import EXAMPLES, RunningServer

R_IMAGE = str(EXAMPLES / "r-randomforest")


def _error(call: object, **kwargs: object) -> dict[str, str]:
    with pytest.raises(ClientError) as error:
        call(**kwargs)  # type: ignore[operator]
    return dict(error.value.response["Error"])


def test_model_lifecycle(server: RunningServer) -> None:
    sagemaker = server.client("sagemaker")
    server.engine.store.create_bucket("models")
    server.engine.store.put_bytes("models", "iris/model.tar.gz", b"not really a tarball")
    container = {
        "Image": R_IMAGE,
        "ModelDataUrl": "s3://models/iris/model.tar.gz",
        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
    }
    arn = sagemaker.create_model(
        ModelName="iris-model", PrimaryContainer=container,
        ExecutionRoleArn="arn:aws:iam::111111111111:role/r",
    )["ModelArn"]  # fmt: skip
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:model/iris-model"
    described = sagemaker.describe_model(ModelName="iris-model")
    assert described["PrimaryContainer"]["ModelDataUrl"] == "s3://models/iris/model.tar.gz"
    assert described["PrimaryContainer"]["Environment"] == {"SAGEMAKER_PROGRAM": "inference.py"}
    assert described["ModelArn"] == arn
    again = _error(sagemaker.create_model, ModelName="iris-model", PrimaryContainer=container)
    assert again["Code"] == "ValidationException" and "already existing" in again["Message"]
    assert [m["ModelName"] for m in sagemaker.list_models()["Models"]] == ["iris-model"]
    sagemaker.delete_model(ModelName="iris-model")
    missing = _error(sagemaker.describe_model, ModelName="iris-model")
    assert missing["Code"] == "ValidationException"
    assert missing["Message"] == f'Could not find model "{arn}".'


def test_bad_models_are_refused(server: RunningServer, tmp_path: Path) -> None:
    sagemaker = server.client("sagemaker")
    no_image = _error(
        sagemaker.create_model,
        ModelName="m1",
        PrimaryContainer={"Image": str(tmp_path / "nowhere")},
    )
    assert "does not exist" in no_image["Message"]
    no_data = _error(
        sagemaker.create_model,
        ModelName="m2",
        PrimaryContainer={"Image": R_IMAGE, "ModelDataUrl": f"file://{tmp_path}/x.tar.gz"},
    )
    assert "is not a file" in no_data["Message"]
    bad_name = _error(
        sagemaker.create_model, ModelName="bad_name", PrimaryContainer={"Image": R_IMAGE}
    )
    assert "regular expression" in bad_name["Message"]
    assert sagemaker.list_models()["Models"] == []


def test_endpoint_config_lifecycle(server: RunningServer) -> None:
    sagemaker = server.client("sagemaker")
    sagemaker.create_model(ModelName="m", PrimaryContainer={"Image": R_IMAGE})
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "m",
        "InitialInstanceCount": 2,
        "InstanceType": "ml.m5.large",
        "InitialVariantWeight": 1.0,
    }
    sagemaker.create_endpoint_config(EndpointConfigName="cfg", ProductionVariants=[variant])
    described = sagemaker.describe_endpoint_config(EndpointConfigName="cfg")
    assert described["ProductionVariants"][0]["InitialInstanceCount"] == 2
    assert described["EndpointConfigArn"].endswith(":endpoint-config/cfg")
    unknown_model = _error(
        sagemaker.create_endpoint_config,
        EndpointConfigName="cfg2",
        ProductionVariants=[dict(variant, ModelName="nope")],
    )
    assert unknown_model["Message"].startswith('Could not find model "')
    unknown_type = _error(
        sagemaker.create_endpoint_config,
        EndpointConfigName="cfg3",
        ProductionVariants=[dict(variant, InstanceType="ml.nope.large")],
    )
    assert "Member must satisfy enum value set: [" in unknown_type["Message"]
    twice = _error(
        sagemaker.create_endpoint_config,
        EndpointConfigName="cfg4",
        ProductionVariants=[variant, variant],
    )
    assert "unique VariantName" in twice["Message"]
    page = sagemaker.list_endpoint_configs(MaxResults=1)
    assert [c["EndpointConfigName"] for c in page["EndpointConfigs"]] == ["cfg"]
    assert "NextToken" not in page
    sagemaker.delete_endpoint_config(EndpointConfigName="cfg")
    assert _error(sagemaker.describe_endpoint_config, EndpointConfigName="cfg")["Code"] == (
        "ValidationException"
    )
