"""AddTags, ListTags, DeleteTags and `Tags` on create, through boto3 against a real server."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import EXAMPLES, RunningServer

R_IMAGE = str(EXAMPLES / "r-randomforest")


def _error(call: Any, **kwargs: Any) -> dict[str, str]:
    with pytest.raises(ClientError) as error:
        call(**kwargs)
    # Errors carry a request id too, as every AWS answer does.
    assert error.value.response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    return dict(error.value.response["Error"])


def _all_tags(sagemaker: Any, arn: str) -> list[dict[str, str]]:
    pages = sagemaker.get_paginator("list_tags").paginate(
        ResourceArn=arn, PaginationConfig={"PageSize": 50}
    )
    return [tag for page in pages for tag in page["Tags"]]


def test_tags_on_create_and_round_trip(server: RunningServer) -> None:
    sagemaker = server.client("sagemaker")
    arn = sagemaker.create_model(
        ModelName="tagged", PrimaryContainer={"Image": R_IMAGE},
        Tags=[{"Key": "team", "Value": "ml"}, {"Key": "cost center", "Value": "42"}],
    )["ModelArn"]  # fmt: skip
    assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == [
        {"Key": "team", "Value": "ml"},
        {"Key": "cost center", "Value": "42"},
    ]
    added = sagemaker.add_tags(
        ResourceArn=arn, Tags=[{"Key": "team", "Value": "data"}, {"Key": "é:/=+-@", "Value": ""}]
    )
    assert added["Tags"] == [{"Key": "team", "Value": "data"}, {"Key": "é:/=+-@", "Value": ""}]
    # An existing key keeps its place and takes the new value.
    assert _all_tags(sagemaker, arn) == [
        {"Key": "team", "Value": "data"},
        {"Key": "cost center", "Value": "42"},
        {"Key": "é:/=+-@", "Value": ""},
    ]
    sagemaker.delete_tags(ResourceArn=arn, TagKeys=["team", "no such key"])
    assert [t["Key"] for t in _all_tags(sagemaker, arn)] == ["cost center", "é:/=+-@"]
    # Deleting the model deletes its tags: a new model of that name starts with none.
    sagemaker.delete_model(ModelName="tagged")
    assert _error(sagemaker.list_tags, ResourceArn=arn)["Code"] == "ValidationException"
    sagemaker.create_model(ModelName="tagged", PrimaryContainer={"Image": R_IMAGE})
    assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == []


def test_tags_on_every_create(server: RunningServer) -> None:
    sagemaker = server.client("sagemaker")
    tags = [{"Key": "made-by", "Value": "test"}]
    arns = [
        sagemaker.create_model(ModelName="m", PrimaryContainer={"Image": R_IMAGE}, Tags=tags)[
            "ModelArn"
        ],
        sagemaker.create_endpoint_config(
            EndpointConfigName="c",
            ProductionVariants=[
                {
                    "VariantName": "v",
                    "ModelName": "m",
                    "InitialInstanceCount": 1,
                    "InstanceType": "local",
                }
            ],
            Tags=tags,
        )["EndpointConfigArn"],
    ]
    for arn in arns:
        assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == tags


def test_tag_limits_and_refusals(server: RunningServer) -> None:
    sagemaker = server.client("sagemaker")
    arn = sagemaker.create_model(ModelName="m", PrimaryContainer={"Image": R_IMAGE})["ModelArn"]
    sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": f"k{i}", "Value": "v"} for i in range(50)])
    pages = list(
        sagemaker.get_paginator("list_tags").paginate(
            ResourceArn=arn, PaginationConfig={"PageSize": 50}
        )
    )
    assert [len(page["Tags"]) for page in pages] == [50]
    # Fifty is the most a resource has; overwriting one of them is still fine.
    sagemaker.add_tags(ResourceArn=arn, Tags=[{"Key": "k0", "Value": "new"}])
    over = _error(sagemaker.add_tags, ResourceArn=arn, Tags=[{"Key": "k50", "Value": "v"}])
    assert over["Code"] == "ResourceLimitExceeded" and "at most 50" in over["Message"]
    reserved = _error(sagemaker.add_tags, ResourceArn=arn, Tags=[{"Key": "aws:x", "Value": "v"}])
    assert reserved["Code"] == "ValidationException" and "aws:" in reserved["Message"]
    pattern = _error(sagemaker.add_tags, ResourceArn=arn, Tags=[{"Key": "a*b", "Value": "v"}])
    assert pattern["Code"] == "ValidationException"
    assert "regular expression pattern" in pattern["Message"]
    too_many = _error(
        sagemaker.add_tags, ResourceArn=arn, Tags=[{"Key": f"n{i}", "Value": ""} for i in range(51)]
    )
    assert "less than or equal to 50" in too_many["Message"]
    missing = _error(
        sagemaker.list_tags, ResourceArn="arn:aws:sagemaker:us-east-1:000000000000:model/none"
    )
    assert missing["Code"] == "ValidationException" and "not found" in missing["Message"]
    # A refused tag on create makes nothing.
    refused = _error(
        sagemaker.create_model, ModelName="m2", PrimaryContainer={"Image": R_IMAGE},
        Tags=[{"Key": "aws:owned", "Value": "v"}],
    )  # fmt: skip
    assert refused["Code"] == "ValidationException"
    assert _error(sagemaker.describe_model, ModelName="m2")["Code"] == "ValidationException"


def test_list_tags_pages(server: RunningServer) -> None:
    """MaxResults has a minimum of 50, so pages are tested over a resource with 50 tags and
    a page size the model allows, through the store's offset tokens."""
    sagemaker = server.client("sagemaker")
    arn = sagemaker.create_model(ModelName="m", PrimaryContainer={"Image": R_IMAGE})["ModelArn"]
    server.engine.tags.add(arn, [(f"k{i:02}", str(i)) for i in range(50)])
    page, token = server.engine.tags.list(arn, None, 20)
    assert [k for k, _ in page] == [f"k{i:02}" for i in range(20)] and token
    rest, end = server.engine.tags.list(arn, token, 50)
    assert [k for k, _ in rest] == [f"k{i:02}" for i in range(20, 50)] and end is None
    bad = _error(sagemaker.list_tags, ResourceArn=arn, NextToken="nonsense")
    assert bad["Code"] == "ValidationException"


def test_the_runtime_tag_names_a_runtime_and_a_bad_one_makes_nothing(
    server: RunningServer,
) -> None:
    sagemaker = server.client("sagemaker")
    error = _error(
        sagemaker.create_model,
        ModelName="on-podman",
        PrimaryContainer={"Image": R_IMAGE},
        Tags=[{"Key": "dockyard:runtime", "Value": "podman"}],
    )
    assert error["Code"] == "ValidationException"
    assert (
        "dockyard:runtime='podman' names no runtime: use one of process, docker"
        in (error["Message"])
    )
    assert sagemaker.list_models(NameContains="on-podman")["Models"] == []
    # The process runtime asked for by name runs the folder it would have chosen anyway.
    arn = sagemaker.create_model(
        ModelName="on-process",
        PrimaryContainer={"Image": R_IMAGE},
        Tags=[{"Key": "dockyard:runtime", "Value": "process"}],
    )["ModelArn"]
    assert sagemaker.list_tags(ResourceArn=arn)["Tags"] == [
        {"Key": "dockyard:runtime", "Value": "process"}
    ]
