"""The CreateTrainingJob shape, its limits, and the status transition table."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from dockyard.contract.errors import InvalidTransition, ValidationError
from dockyard.contract.training_jobs import (
    PRIMARY_OF,
    SECONDARY_TRANSITIONS,
    CreateTrainingJobRequest,
    ListTrainingJobsRequest,
    SecondaryStatus,
    TrainingJobStatus,
    check_transition,
)

SDK_LIKE: dict[str, Any] = {
    "TrainingJobName": "iris-2026-01-01-00-00-00-000",
    "RoleArn": "arn:aws:iam::111111111111:role/r",
    "AlgorithmSpecification": {
        "TrainingImage": "/images/r",
        "TrainingInputMode": "File",
        "EnableSageMakerMetricsTimeSeries": True,
    },
    "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
    "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30},
    "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
    "InputDataConfig": [
        {
            "ChannelName": "train",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": "s3://bucket/train",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        }
    ],
    "HyperParameters": {"target": "Species", "sagemaker_program": '"train.py"'},
    "DebugHookConfig": {"S3OutputPath": "s3://bucket/debug", "CollectionConfigurations": []},
    "ProfilerConfig": {"S3OutputPath": "s3://bucket/prof", "DisableProfiler": False},
    "ProfilerRuleConfigurations": [],
}


def request(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(SDK_LIKE)
    body.update(changes)
    return body


def test_sdk_shaped_request_is_accepted_and_debugger_config_ignored() -> None:
    parsed = CreateTrainingJobRequest.from_wire(request())
    wire = parsed.to_wire()
    assert parsed.training_job_name == SDK_LIKE["TrainingJobName"]
    assert "DebugHookConfig" not in wire and "ProfilerConfig" not in wire
    # JSON-encoded hyperparameters pass through byte for byte.
    assert wire["HyperParameters"]["sagemaker_program"] == '"train.py"'
    assert wire["ResourceConfig"]["VolumeSizeInGB"] == 30


@pytest.mark.parametrize("name", ["a_b", "-ab", "ab-", "x" * 64, "", "a b", "naïve"])
def test_invalid_job_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="trainingJobName"):
        CreateTrainingJobRequest.from_wire(request(TrainingJobName=name))


@pytest.mark.parametrize("name", ["a", "a-b", "a--b", "x" * 63, "A1-2b"])
def test_valid_job_names(name: str) -> None:
    assert (
        CreateTrainingJobRequest.from_wire(request(TrainingJobName=name)).training_job_name == name
    )


def test_101_hyperparameters_are_refused_with_the_limit_named() -> None:
    too_many = {f"k{i}": "v" for i in range(101)}
    with pytest.raises(ValidationError, match=r"hyperParameters.*less than or equal to 100"):
        CreateTrainingJobRequest.from_wire(request(HyperParameters=too_many))
    assert CreateTrainingJobRequest.from_wire(
        request(HyperParameters=dict(list(too_many.items())[:100]))
    )


def test_hyperparameter_value_limit_is_2500() -> None:
    CreateTrainingJobRequest.from_wire(request(HyperParameters={"a": "x" * 2500}))
    with pytest.raises(ValidationError, match="2500"):
        CreateTrainingJobRequest.from_wire(request(HyperParameters={"a": "x" * 2501}))


def test_channel_limits_and_names() -> None:
    channel = SDK_LIKE["InputDataConfig"][0]
    many = [dict(channel, ChannelName=f"c{i}") for i in range(21)]
    with pytest.raises(ValidationError, match="inputDataConfig"):
        CreateTrainingJobRequest.from_wire(request(InputDataConfig=many))
    with pytest.raises(ValidationError, match="unique"):
        CreateTrainingJobRequest.from_wire(request(InputDataConfig=[channel, channel]))
    with pytest.raises(ValidationError, match="channelName"):
        CreateTrainingJobRequest.from_wire(
            request(InputDataConfig=[dict(channel, ChannelName="a/b")])
        )


def test_environment_keys_and_metric_regexes_are_checked() -> None:
    with pytest.raises(ValidationError, match="environment"):
        CreateTrainingJobRequest.from_wire(request(Environment={"1BAD": "x"}))
    spec = dict(SDK_LIKE["AlgorithmSpecification"], MetricDefinitions=[{"Name": "m", "Regex": "("}])
    with pytest.raises(ValidationError, match="valid regular expression"):
        CreateTrainingJobRequest.from_wire(request(AlgorithmSpecification=spec))


def test_missing_members_are_named() -> None:
    body = request()
    del body["RoleArn"]
    with pytest.raises(ValidationError, match="Value null at 'roleArn'"):
        CreateTrainingJobRequest.from_wire(body)


def test_channel_input_mode_overrides_the_job_mode() -> None:
    channel = dict(SDK_LIKE["InputDataConfig"][0], InputMode="Pipe")
    parsed = CreateTrainingJobRequest.from_wire(request(InputDataConfig=[channel]))
    assert parsed.input_mode_of(parsed.channels[0]) == "Pipe"


def test_list_request_bounds() -> None:
    assert ListTrainingJobsRequest.from_wire({}).max_results == 10
    with pytest.raises(ValidationError):
        ListTrainingJobsRequest.from_wire({"MaxResults": 101})


# -- transitions ---------------------------------------------------------------------------


def test_every_secondary_status_has_a_primary_and_a_row() -> None:
    assert set(PRIMARY_OF) == set(SecondaryStatus)
    assert set(SECONDARY_TRANSITIONS) == set(SecondaryStatus)


def test_happy_path_is_allowed() -> None:
    path = [
        SecondaryStatus.STARTING,
        SecondaryStatus.DOWNLOADING,
        SecondaryStatus.TRAINING,
        SecondaryStatus.UPLOADING,
        SecondaryStatus.COMPLETED,
    ]
    primaries = [check_transition(a, b) for a, b in itertools.pairwise(path)]
    assert primaries[-1] is TrainingJobStatus.COMPLETED
    assert primaries[:-1] == [TrainingJobStatus.IN_PROGRESS] * 3


def test_stop_and_max_runtime_paths() -> None:
    assert (
        check_transition(SecondaryStatus.TRAINING, SecondaryStatus.STOPPING)
        is TrainingJobStatus.STOPPING
    )
    # A stopped job's artifacts are uploaded while it stays Stopping (never InProgress again).
    assert (
        check_transition(SecondaryStatus.STOPPING, SecondaryStatus.UPLOADING)
        is TrainingJobStatus.STOPPING
    )
    assert (
        check_transition(SecondaryStatus.TRAINING, SecondaryStatus.UPLOADING)
        is TrainingJobStatus.IN_PROGRESS
    )
    assert (
        check_transition(SecondaryStatus.UPLOADING, SecondaryStatus.MAX_RUNTIME_EXCEEDED)
        is TrainingJobStatus.STOPPED
    )


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (SecondaryStatus.COMPLETED, SecondaryStatus.TRAINING),
        (SecondaryStatus.FAILED, SecondaryStatus.COMPLETED),
        (SecondaryStatus.STARTING, SecondaryStatus.COMPLETED),
        (SecondaryStatus.TRAINING, SecondaryStatus.DOWNLOADING),
    ],
)
def test_forbidden_transitions_raise(current: SecondaryStatus, target: SecondaryStatus) -> None:
    with pytest.raises(InvalidTransition):
        check_transition(current, target)
