"""Every List operation's filters, sorting and paging, as botocore's model defines them, over
many records written straight into the metadata store (cheap) and read back through boto3."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dockyard.contract import names
from dockyard.contract.endpoints import CreateEndpointRequest, EndpointState
from dockyard.contract.models import CreateEndpointConfigRequest, CreateModelRequest
from dockyard.contract.shapes import NoState, WireShape
from dockyard.contract.training_jobs import (
    CreateTrainingJobRequest,
    SecondaryStatus,
    TrainingJobState,
)
from dockyard.contract.transform_jobs import CreateTransformJobRequest, TransformJobState
from dockyard.engine.endpoints import ENDPOINT
from dockyard.engine.models import ENDPOINT_CONFIG, MODEL
from dockyard.engine.transform_jobs import TRANSFORM_JOB
from dockyard.storage.metadata import Transition
from dockyard.storage.records import (
    ENDPOINT_CONFIGS,
    ENDPOINTS,
    MODELS,
    TRAINING_JOBS,
    TRANSFORM_JOBS,
    Kind,
    Record,
)
from tests.conftest import RunningServer

BASE = 1_700_000_000.0
COUNT = 60
WORDS = ("alpha", "beta", "gamma")
SECONDARY = {"InProgress": "Training", "Completed": "Completed", "Failed": "Failed",
             "Stopped": "Stopped"}  # fmt: skip


@dataclass(frozen=True)
class Listing:
    operation: str
    items_key: str
    name_key: str
    status_key: str | None
    statuses: tuple[str, ...]
    kind: str  # the ARN's resource type (the metadata kind for resources)
    modified: bool  # has LastModifiedTime filters
    default_order: str


LISTINGS = [
    Listing("list_training_jobs", "TrainingJobSummaries", "TrainingJobName",
            "TrainingJobStatus", ("InProgress", "Completed", "Failed", "Stopped"),
            "training-job", True, "Ascending"),
    Listing("list_models", "Models", "ModelName", None, (), MODEL, False, "Descending"),
    Listing("list_endpoint_configs", "EndpointConfigs", "EndpointConfigName", None, (),
            ENDPOINT_CONFIG, False, "Descending"),
    Listing("list_endpoints", "Endpoints", "EndpointName", "EndpointStatus",
            ("InService", "Failed", "OutOfService"), ENDPOINT, True, "Descending"),
    Listing("list_transform_jobs", "TransformJobSummaries", "TransformJobName",
            "TransformJobStatus", ("Completed", "Failed", "Stopped"), TRANSFORM_JOB, True,
            "Descending"),
]  # fmt: skip


@dataclass(frozen=True)
class Row:
    name: str
    created: float
    modified: float
    status: str | None


def _rows(listing: Listing) -> list[Row]:
    rng = random.Random(listing.operation)
    rows = []
    for i in range(COUNT):
        created = BASE + i * 10 + rng.random()
        rows.append(
            Row(
                name=f"{WORDS[i % 3]}-{rng.randrange(10**6):06d}-{i}",
                created=created,
                modified=created + rng.randrange(1000),
                status=rng.choice(listing.statuses) if listing.statuses else None,
            )
        )
    return rows


def _insert(server: RunningServer, listing: Listing, rows: list[Row]) -> None:
    """Straight into the store: 60 records in milliseconds, with the times a test needs."""
    metadata, settings = server.engine.metadata, server.settings
    for row in rows:
        arn = names.arn(listing.kind, row.name, settings.region, settings.account_id)
        kind, request, state = _resource_of(listing.kind, row.name, row.status)
        record = Record(
            name=row.name,
            arn=arn,
            creation_time=row.created,
            state=state,
            status=row.status,
            last_modified_time=row.modified if listing.modified else None,
            request=request,
        )
        if kind is TRAINING_JOBS:
            first = Transition(SECONDARY[str(row.status)], row.created, None, None)
            metadata.insert_training_job(record, first)
        else:
            metadata.insert_resource(kind, record, "exists")


def _resource_of(
    kind_name: str, name: str, status: str | None
) -> tuple[Kind[Any, Any], WireShape, WireShape]:
    """A valid request (and a state) for a resource of this kind: the store keeps typed ones."""
    if kind_name == TRAINING_JOBS.name:
        training = CreateTrainingJobRequest.from_wire(
            {
                "TrainingJobName": name,
                "RoleArn": "arn:aws:iam::111111111111:role/listing",
                "AlgorithmSpecification": {"TrainingImage": "examples/r"},
                "OutputDataConfig": {"S3OutputPath": "s3://b/out"},
                "ResourceConfig": {"InstanceType": "local", "InstanceCount": 1},
            }
        )
        state = TrainingJobState(
            secondary_status=SecondaryStatus(SECONDARY[str(status)]),
            model_artifacts=f"s3://b/out/{name}/output/model.tar.gz",
        )
        return TRAINING_JOBS, training, state
    if kind_name == MODEL:
        image = {"Image": "examples/r"}
        return (
            MODELS,
            CreateModelRequest.from_wire({"ModelName": name, "PrimaryContainer": image}),
            NoState(),
        )
    if kind_name == ENDPOINT_CONFIG:
        variant = {"VariantName": "v", "ModelName": "m"}
        request = CreateEndpointConfigRequest.from_wire(
            {"EndpointConfigName": name, "ProductionVariants": [variant]}
        )
        return ENDPOINT_CONFIGS, request, NoState()
    if kind_name == ENDPOINT:
        request = CreateEndpointRequest(endpoint_name=name, endpoint_config_name="c")
        return ENDPOINTS, request, EndpointState(endpoint_config_name="c")
    assert kind_name == TRANSFORM_JOB
    transform = CreateTransformJobRequest.from_wire(
        {
            "TransformJobName": name,
            "ModelName": "m",
            "TransformInput": {
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/in"}}
            },
            "TransformOutput": {"S3OutputPath": "s3://b/out"},
            "TransformResources": {"InstanceType": "local", "InstanceCount": 1},
        }
    )
    return TRANSFORM_JOBS, transform, TransformJobState()


def _expected(listing: Listing, rows: list[Row], request: dict[str, Any]) -> list[str]:
    def epoch(key: str) -> float | None:
        value = request.get(key)
        return None if value is None else value.timestamp()

    chosen = [
        row
        for row in rows
        if request.get("NameContains", "") in row.name
        and request.get("StatusEquals") in (None, row.status)
        and (epoch("CreationTimeAfter") is None or row.created > epoch("CreationTimeAfter"))
        and (epoch("CreationTimeBefore") is None or row.created < epoch("CreationTimeBefore"))
        and (
            epoch("LastModifiedTimeAfter") is None or row.modified > epoch("LastModifiedTimeAfter")
        )
        and (
            epoch("LastModifiedTimeBefore") is None
            or row.modified < epoch("LastModifiedTimeBefore")
        )
    ]
    sort_by = request.get("SortBy", "CreationTime")
    descending = request.get("SortOrder", listing.default_order) == "Descending"
    by_name = sorted(chosen, key=lambda r: r.name)  # ties go by name, ascending
    key = {
        "Name": lambda r: r.name,
        "Status": lambda r: r.status,
        "CreationTime": lambda r: r.created,
    }
    return [r.name for r in sorted(by_name, key=key[sort_by], reverse=descending)]


def _listed(client: Any, listing: Listing, request: dict[str, Any], page: int) -> list[str]:
    """Every page through botocore's own paginator; each page at most `page` long."""
    paginator = client.get_paginator(listing.operation)
    names_seen: list[str] = []
    for answer in paginator.paginate(**request, PaginationConfig={"PageSize": page}):
        assert len(answer[listing.items_key]) <= page
        names_seen += [item[listing.name_key] for item in answer[listing.items_key]]
    return names_seen


def _at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@pytest.mark.parametrize("listing", LISTINGS, ids=lambda listing: listing.operation)
def test_list_filters_sorting_and_paging(server: RunningServer, listing: Listing) -> None:
    sagemaker = server.client("sagemaker")
    rows = _rows(listing)
    _insert(server, listing, rows)
    middle = BASE + COUNT * 5
    requests: list[dict[str, Any]] = [
        {},
        {"SortBy": "Name"},
        {"SortBy": "Name", "SortOrder": "Descending"},
        {"SortBy": "CreationTime", "SortOrder": "Ascending"},
        {"NameContains": "beta"},
        {"NameContains": "gam", "SortBy": "Name", "SortOrder": "Ascending"},
        {"NameContains": "nothing-like-it"},
        {"CreationTimeAfter": _at(middle)},
        {"CreationTimeBefore": _at(middle), "CreationTimeAfter": _at(BASE + 100)},
    ]
    if listing.statuses:
        requests += [
            {"SortBy": "Status"},
            {"SortBy": "Status", "SortOrder": "Ascending"},
            {"StatusEquals": listing.statuses[0], "NameContains": "alpha"},
        ]
    if listing.modified:
        requests += [
            {"LastModifiedTimeAfter": _at(middle)},
            {"LastModifiedTimeBefore": _at(middle + 300), "SortBy": "Name"},
        ]
    for request in requests:
        expected = _expected(listing, rows, request)
        for page in (7, 100):
            assert _listed(sagemaker, listing, request, page) == expected, (request, page)
    # One call answers MaxResults (default 10) items and a token for the rest.
    first = getattr(sagemaker, listing.operation)()
    assert len(first[listing.items_key]) == 10 and "NextToken" in first
    item = first[listing.items_key][0]
    assert item[listing.name_key.removesuffix("Name") + "Arn"].startswith(
        f"arn:aws:sagemaker:us-east-1:000000000000:{listing.kind}/"
    )


def test_list_refusals_are_the_models(server: RunningServer) -> None:
    sagemaker = server.client("sagemaker")
    refusals = [
        ({"MaxResults": 101}, "less than or equal to 100"),
        ({"SortBy": "Size"}, "enum value set"),
        ({"NameContains": "a_b"}, "regular expression pattern"),
        ({"NextToken": "not-ours"}, "NextToken"),
    ]
    for request, words in refusals:
        with pytest.raises(ClientError) as error:
            sagemaker.list_training_jobs(**request)
        assert error.value.response["Error"]["Code"] == "ValidationException"
        assert words in error.value.response["Error"]["Message"], request


def test_training_jobs_with_warm_pools_or_plans_are_none(server: RunningServer) -> None:
    sagemaker = server.client("sagemaker")
    _insert(server, LISTINGS[0], _rows(LISTINGS[0])[:3])
    assert len(sagemaker.list_training_jobs()["TrainingJobSummaries"]) == 3
    assert (
        sagemaker.list_training_jobs(WarmPoolStatusEquals="Available")["TrainingJobSummaries"] == []
    )
