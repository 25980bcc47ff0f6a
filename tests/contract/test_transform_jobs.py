"""The CreateTransformJob shape and its limits, the status table, and the effective parameters."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import pytest

from dockyard.contract.errors import InvalidTransition, ValidationError
from dockyard.contract.transform_jobs import (
    TRANSFORM_TRANSITIONS,
    CreateTransformJobRequest,
    EffectiveParameters,
    ListTransformJobsRequest,
    TransformJobNameRequest,
    TransformJobStatus,
    check_transform_transition,
    effective_parameters,
    notes,
    parse_manifest,
    transform_environment,
)

# What the SageMaker Python SDK's Transformer.transform() puts on the wire.
SDK_LIKE: dict[str, Any] = {
    "TransformJobName": "iris-transform-2026-01-01-00-00-00-000",
    "ModelName": "iris-model",
    "TransformInput": {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/in"}},
        "ContentType": "text/csv",
        "CompressionType": "None",
        "SplitType": "Line",
    },
    "TransformOutput": {"S3OutputPath": "s3://bucket/out", "AssembleWith": "Line"},
    "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    "DataProcessing": {"InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$"},
    "Tags": [{"Key": "team", "Value": "ml"}],
    "ExperimentConfig": {"ExperimentName": "e", "TrialName": "t"},
    "DataCaptureConfig": {"DestinationS3Uri": "s3://bucket/capture"},
}


def request(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(SDK_LIKE)
    body.update(changes)
    return body


def with_input(**changes: Any) -> dict[str, Any]:
    return request(TransformInput={**SDK_LIKE["TransformInput"], **changes})


def parse(body: dict[str, Any]) -> CreateTransformJobRequest:
    return CreateTransformJobRequest.from_wire(body)


def test_sdk_shaped_request_round_trips_with_defaults_filled_in() -> None:
    parsed = parse(request())
    assert parsed.transform_input.split_type == "Line"
    assert parsed.transform_input.s3.s3_uri == "s3://bucket/in"
    assert parsed.data_processing is not None
    assert parsed.data_processing.join_source == "Input"
    assert parsed.invocations_timeout_seconds == 600
    assert parsed.invocations_max_retries == 3
    wire = parsed.to_wire()
    assert wire["TransformOutput"] == {
        "S3OutputPath": "s3://bucket/out",
        "AssembleWith": "Line",
    }
    # Kept so Describe can echo them, though dockyard does nothing with them.
    assert wire["ExperimentConfig"] == {"ExperimentName": "e", "TrialName": "t"}
    assert "MaxPayloadInMB" not in wire
    assert parse({**request(), "MaxPayloadInMB": 20}).to_wire()["MaxPayloadInMB"] == 20


def test_minimal_request_takes_the_documented_defaults() -> None:
    body = request()
    for optional in ("DataProcessing", "Tags", "ExperimentConfig", "DataCaptureConfig"):
        del body[optional]
    body["TransformInput"] = {
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/in"}}
    }
    body["TransformOutput"] = {"S3OutputPath": "s3://bucket/out"}
    parsed = parse(body)
    assert parsed.transform_input.split_type == "None"
    assert parsed.transform_input.compression_type == "None"
    assert parsed.transform_output.assemble_with == "None"
    assert parsed.batch_strategy is None and parsed.max_payload_in_mb is None
    assert notes(parsed) == []


@pytest.mark.parametrize("name", ["a_b", "-ab", "ab-", "x" * 64, ""])
def test_invalid_job_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError, match="transformJobName"):
        parse(request(TransformJobName=name))
    with pytest.raises(ValidationError, match="transformJobName"):
        TransformJobNameRequest.from_wire({"TransformJobName": name})


def test_model_name_pattern() -> None:
    with pytest.raises(ValidationError, match="modelName"):
        parse(request(ModelName="iris_model"))


def test_tfrecord_is_refused_with_what_to_use_instead() -> None:
    with pytest.raises(ValidationError) as caught:
        parse(with_input(SplitType="TFRecord"))
    message = str(caught.value)
    assert "transformInput.splitType" in message
    assert "TFRecord is not supported" in message
    assert "RecordIO" in message and "SplitType None" in message


def test_augmented_manifest_is_refused_with_what_to_use_instead() -> None:
    source = {"S3DataSource": {"S3DataType": "AugmentedManifestFile", "S3Uri": "s3://b/m"}}
    with pytest.raises(ValidationError, match="AugmentedManifestFile is not supported") as caught:
        parse(with_input(DataSource=source))
    assert "S3Prefix" in str(caught.value) and "InputFilter" in str(caught.value)


def test_manifest_file_and_local_inputs_are_accepted() -> None:
    source = {"S3DataSource": {"S3DataType": "ManifestFile", "S3Uri": "s3://b/in.manifest"}}
    assert parse(with_input(DataSource=source)).transform_input.s3.s3_data_type == "ManifestFile"
    local = {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "file:///data/in"}}
    assert parse(with_input(DataSource=local)).transform_input.s3.s3_uri == "file:///data/in"
    nowhere = {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "data/in"}}
    with pytest.raises(ValidationError, match="s3Uri"):
        parse(with_input(DataSource=nowhere))


def test_output_path_is_s3_or_local() -> None:
    # As for inputs and training output, a local folder works too; anything else is refused.
    assert parse(request(TransformOutput={"S3OutputPath": "/srv/out"})).transform_output
    with pytest.raises(ValidationError, match="s3OutputPath"):
        parse(request(TransformOutput={"S3OutputPath": "out"}))


@pytest.mark.parametrize(
    ("member", "value", "constraint"),
    [
        ("MaxPayloadInMB", 101, "less than or equal to 100"),
        ("MaxPayloadInMB", -1, "greater than or equal to 0"),
        ("MaxConcurrentTransforms", -1, "greater than or equal to 0"),
        ("BatchStrategy", "Batched", "enum value set"),
    ],
)
def test_batch_parameter_limits(member: str, value: Any, constraint: str) -> None:
    with pytest.raises(ValidationError, match=constraint):
        parse(request(**{member: value}))


def test_concurrency_times_payload_may_not_exceed_100() -> None:
    assert parse(request(MaxConcurrentTransforms=4, MaxPayloadInMB=25))
    with pytest.raises(ValidationError) as caught:
        parse(request(MaxConcurrentTransforms=4, MaxPayloadInMB=26))
    assert "4 x 26 = 104" in str(caught.value)
    # 0 payload is "unlimited" and 0 concurrency is "ask the container": no product to check.
    assert parse(request(MaxConcurrentTransforms=8, MaxPayloadInMB=0))
    assert parse(request(MaxConcurrentTransforms=0, MaxPayloadInMB=100))


def test_instance_type_and_count_are_checked() -> None:
    # Which types TransformResources allows is checked at the API edge (botocore's enum); the
    # contract refuses only what is no instance type at all.
    with pytest.raises(ValidationError, match=r"'ml\.nope' is not an instance type"):
        parse(request(TransformResources={"InstanceType": "ml.nope", "InstanceCount": 1}))
    with pytest.raises(ValidationError, match="instanceCount"):
        parse(request(TransformResources={"InstanceType": "local", "InstanceCount": 0}))


def test_model_client_config_limits() -> None:
    ok = parse(request(ModelClientConfig={"InvocationsTimeoutInSeconds": 3600}))
    assert ok.invocations_timeout_seconds == 3600 and ok.invocations_max_retries == 3
    with pytest.raises(ValidationError, match="invocationsTimeoutInSeconds"):
        parse(request(ModelClientConfig={"InvocationsTimeoutInSeconds": 0}))
    with pytest.raises(ValidationError, match="invocationsMaxRetries"):
        parse(request(ModelClientConfig={"InvocationsMaxRetries": 4}))


def test_environment_limits() -> None:
    assert parse(request(Environment={f"K{i}": "v" for i in range(16)}))
    with pytest.raises(ValidationError, match="environment"):
        parse(request(Environment={f"K{i}": "v" for i in range(17)}))
    with pytest.raises(ValidationError, match="environment"):
        parse(request(Environment={"1BAD": "v"}))
    assert parse(request(Environment={"BIG": "x" * 10240}))
    with pytest.raises(ValidationError, match="10240"):
        parse(request(Environment={"BIG": "x" * 10241}))


def test_filters_longer_than_63_characters_are_refused() -> None:
    long_filter = "$." + "a" * 62
    with pytest.raises(ValidationError, match="outputFilter"):
        parse(request(DataProcessing={"OutputFilter": long_filter}))


def test_notes_name_the_settings_that_change_nothing() -> None:
    parsed = parse(
        {
            **with_input(SplitType="None"),
            "BatchStrategy": "MultiRecord",
            "TransformOutput": {"S3OutputPath": "s3://b/o", "KmsKeyId": "k"},
        }
    )
    found = " | ".join(notes(parsed))
    assert "MultiRecord with SplitType None" in found
    assert "DataCaptureConfig" in found and "ExperimentConfig" in found and "KMS" in found


# -- statuses ----------------------------------------------------------------------------------

T = TransformJobStatus


@pytest.mark.parametrize(
    "path",
    [
        [T.IN_PROGRESS, T.COMPLETED],
        [T.IN_PROGRESS, T.FAILED],
        [T.IN_PROGRESS, T.STOPPING, T.STOPPED],
        [T.IN_PROGRESS, T.STOPPING, T.FAILED],
    ],
)
def test_documented_paths(path: list[TransformJobStatus]) -> None:
    for current, target in itertools.pairwise(path):
        check_transform_transition(current, target)


def test_final_statuses_stay_final_and_a_stop_never_completes() -> None:
    for final in (T.COMPLETED, T.FAILED, T.STOPPED):
        assert TRANSFORM_TRANSITIONS[final] == frozenset()
        with pytest.raises(InvalidTransition, match=f"from {final} to InProgress"):
            check_transform_transition(final, T.IN_PROGRESS)
    with pytest.raises(InvalidTransition):
        check_transform_transition(T.STOPPING, T.COMPLETED)


# -- list ----------------------------------------------------------------------------------------


def test_list_request_bounds_and_defaults() -> None:
    parsed = ListTransformJobsRequest.from_wire({})
    assert (parsed.max_results, parsed.sort_by, parsed.sort_order) == (
        10,
        "CreationTime",
        "Descending",
    )
    parsed = ListTransformJobsRequest.from_wire(
        {"StatusEquals": "Stopping", "SortBy": "Status", "NameContains": "iris-"}
    )
    assert parsed.status_equals is T.STOPPING
    for bad in ({"MaxResults": 0}, {"MaxResults": 101}, {"NameContains": "a_b"}):
        with pytest.raises(ValidationError):
            ListTransformJobsRequest.from_wire(bad)
    with pytest.raises(ValidationError, match="statusEquals"):
        ListTransformJobsRequest.from_wire({"StatusEquals": "Running"})


# -- effective parameters ------------------------------------------------------------------------


def plain(**changes: Any) -> CreateTransformJobRequest:
    return parse(request(**changes))


def test_defaults_when_neither_request_nor_container_says() -> None:
    assert effective_parameters(plain(), None) == EffectiveParameters("MultiRecord", 6, 1)
    assert effective_parameters(plain(), None).max_payload_bytes == 6 * 1024 * 1024


def test_the_container_fills_what_the_request_leaves_out() -> None:
    answer = {"BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 20, "MaxConcurrentTransforms": 4}
    assert effective_parameters(plain(), answer) == EffectiveParameters("SingleRecord", 20, 4)
    # The API's own spelling is understood too.
    assert effective_parameters(plain(), {"BatchStrategy": "SingleRecord"}).batch_strategy == (
        "SingleRecord"
    )


def test_the_request_wins_over_the_container() -> None:
    answer = {"BatchStrategy": "SINGLE_RECORD", "MaxPayloadInMB": 20, "MaxConcurrentTransforms": 4}
    chosen = plain(BatchStrategy="MultiRecord", MaxPayloadInMB=0, MaxConcurrentTransforms=2)
    # MaxPayloadInMB 0 is the user's "unlimited", not "unset".
    assert effective_parameters(chosen, answer) == EffectiveParameters("MultiRecord", 0, 2)
    assert effective_parameters(chosen, answer).max_payload_bytes == 0


def test_zero_concurrency_in_the_request_asks_the_container() -> None:
    answer = {"MaxConcurrentTransforms": 3}
    assert (
        effective_parameters(plain(MaxConcurrentTransforms=0), answer).max_concurrent_transforms
        == 3
    )


@pytest.mark.parametrize(
    "answer",
    [
        {"BatchStrategy": "multi", "MaxPayloadInMB": "20", "MaxConcurrentTransforms": 0},
        {"BatchStrategy": 1, "MaxPayloadInMB": 101, "MaxConcurrentTransforms": -2},
        {"BatchStrategy": None, "MaxPayloadInMB": True, "MaxConcurrentTransforms": 2.5},
        ["MULTI_RECORD", 20],
        "not json at all",
        None,
    ],
)
def test_malformed_container_answers_are_ignored(answer: object) -> None:
    assert effective_parameters(plain(), answer) == EffectiveParameters("MultiRecord", 6, 1)


def test_one_bad_value_does_not_spoil_the_others() -> None:
    answer = {"BatchStrategy": "SINGLE", "MaxPayloadInMB": 12, "MaxConcurrentTransforms": "4"}
    assert effective_parameters(plain(), answer) == EffectiveParameters("MultiRecord", 12, 1)


def test_container_environment_carries_only_what_the_user_chose() -> None:
    env = transform_environment(plain(), {"MODEL_VAR": "m", "SAGEMAKER_BATCH": "no"})
    assert env == {"MODEL_VAR": "m", "SAGEMAKER_BATCH": "true"}
    chosen = plain(
        BatchStrategy="SingleRecord",
        MaxPayloadInMB=0,
        MaxConcurrentTransforms=2,
        Environment={"MODEL_VAR": "job", "OTHER": "o"},
    )
    assert transform_environment(chosen, {"MODEL_VAR": "m"}) == {
        "MODEL_VAR": "job",
        "OTHER": "o",
        "SAGEMAKER_BATCH": "true",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": "0",
        "SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD",
        "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "2",
    }


# -- manifests -----------------------------------------------------------------------------------


def test_a_manifest_lists_uris_under_its_prefix_in_order() -> None:
    text = b'[{"prefix": "s3://bucket/in/"}, "b.csv", "a/c.csv", "b.csv"]'
    assert parse_manifest(text) == [
        "s3://bucket/in/b.csv",
        "s3://bucket/in/a/c.csv",
        "s3://bucket/in/b.csv",
    ]
    # The prefix and key are joined as S3 joins them: no slash added.
    assert parse_manifest('[{"prefix": "s3://b/day-"}, "1.csv"]') == ["s3://b/day-1.csv"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "is not JSON"),
        ('{"prefix": "s3://b/"}', "not a non-empty JSON array"),
        ("[]", "not a non-empty JSON array"),
        ('["a.csv"]', 'must start with {"prefix"'),
        ('[{"prefix": "s3://b/"}]', "lists no objects"),
        ('[{"prefix": "s3://b/"}, "a.csv", 3]', "element 3 (3) must be a key relative"),
        ('[{"prefix": "s3://b/"}, "s3://other/a.csv"]', "must be a key relative"),
        ('[{"prefix": "bucket/in/"}, "a.csv"]', "not an s3:// or file:// URI"),
    ],
)
def test_bad_manifests_say_what_is_wrong(text: str, expected: str) -> None:
    with pytest.raises(ValidationError, match=r"s3://b/m\.manifest") as caught:
        parse_manifest(text, "manifest s3://b/m.manifest")
    assert expected in str(caught.value)
