"""The request checks from botocore's model, as pure functions: types, bounds, NUL, wording,
dockyard's own extensions, and the JSON depth scan."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.model import Shape

from dockyard.api.json_apis import SERVICE_MODELS
from dockyard.api.limits import json_depth, parse_json_object
from dockyard.api.validation import (
    CHECKED_TYPES,
    Problem,
    check_invoke_endpoint,
    check_request,
    check_value,
    service_model,
)
from dockyard.contract.errors import SerializationError, ValidationError


def _message(service: str, operation: str, params: dict[str, Any]) -> str:
    with pytest.raises((ValidationError, SerializationError)) as raised:
        check_request(service, operation, params)
    return str(raised.value)


def test_targets_name_the_models_they_are_checked_against() -> None:
    for target, service in SERVICE_MODELS.items():
        assert service_model(service).metadata["targetPrefix"] == target


def test_every_wire_type_of_the_served_models_has_a_check() -> None:
    found: set[str] = set()

    def walk(shape: Shape, seen: set[str]) -> None:
        if shape.name in seen:
            return
        seen.add(shape.name)
        found.add(shape.type_name)
        for child in list(getattr(shape, "members", {}).values()) + [
            getattr(shape, a) for a in ("member", "key", "value") if hasattr(shape, a)
        ]:
            walk(child, seen)

    for service in ("sagemaker", "logs", "sagemaker-runtime", "ecr"):
        model = service_model(service)
        seen: set[str] = set()
        for operation in model.operation_names:
            shape = model.operation_model(operation).input_shape
            if shape is not None:
                walk(shape, seen)
    # SageMaker's models have no document or union input; if one appears, this fails first.
    assert found <= CHECKED_TYPES, found - CHECKED_TYPES


def test_names_lengths_and_ranges_in_sagemakers_words() -> None:
    assert _message("sagemaker", "DescribeModel", {"ModelName": "-x"}) == (
        "1 validation error detected: Value '-x' at 'modelName' failed to satisfy constraint: "
        "Member must satisfy regular expression pattern: ^[a-zA-Z0-9]([\\-a-zA-Z0-9]*[a-zA-Z0-9])?"
    )
    message = _message("sagemaker", "ListModels", {"MaxResults": 0, "NameContains": "a b"})
    assert message.startswith("2 validation errors detected: ")
    assert "Value '0' at 'maxResults' failed to satisfy constraint: Member must have value " in (
        message
    )
    long = "x" * 3000
    message = _message("sagemaker", "DescribeModel", {"ModelName": long})
    assert "Value '" + "x" * 60 + "...' at 'modelName'" in message  # not echoed whole
    assert "length less than or equal to 63" in message


def test_every_problem_is_counted_and_the_message_stays_short() -> None:
    hyper = {f"k{i}": "bad\nvalue" for i in range(30)}
    message = _message(
        "sagemaker",
        "CreateTrainingJob",
        {"TrainingJobName": "j", "HyperParameters": hyper},
    )
    # 30 values, and RoleArn and OutputDataConfig missing
    assert message.startswith("32 validation errors detected: ")
    assert message.endswith("; and 22 more")


def test_strings_are_counted_as_java_counts_them() -> None:
    """Lengths are UTF-16 code units: an emoji is two."""
    training = {"Key": "k", "Value": "😀" * 128}
    check_value(service_model("sagemaker").shape_for("Tag"), training, "tags.1.member", [])
    problems: list[Problem] = []
    training["Value"] = "😀" * 129
    check_value(service_model("sagemaker").shape_for("Tag"), training, "tags.1.member", problems)
    assert [p.constraint for p in problems] == ["Member must have length less than or equal to 256"]


def test_nul_and_lone_surrogates_are_refused_in_every_string() -> None:
    for text in ("a\x00", "\ud800"):
        problems: list[Problem] = []
        check_value(service_model("sagemaker").shape_for("NextToken"), text, "nextToken", problems)
        assert len(problems) == 1, text
    message = _message("logs", "GetLogEvents", {"logGroupName": "g", "logStreamName": "s\x00"})
    assert "Value 's\\u0000' at 'logStreamName'" in message


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (True, "must be a timestamp in epoch seconds, not a boolean"),
        ("2024-01-01", "must be a timestamp in epoch seconds, not a string"),
        (1e300, "Member must have value less than or equal to 253402300799"),
    ],
)
def test_timestamps(value: Any, words: str) -> None:
    assert words in _message("sagemaker", "ListModels", {"CreationTimeAfter": value})


def test_blobs_are_base64_within_their_length() -> None:
    shape = Shape("Data", {"type": "blob", "max": 3})
    for value, count in (("YWJj", 0), ("YWJjZA==", 1), ("not base64!", 1), (5, 1)):
        problems: list[Problem] = []
        check_value(shape, value, "data", problems)
        assert len(problems) == count, value


def test_dockyards_own_extensions_of_the_model() -> None:
    """Local data where an S3 URI goes, and dockyard's instance types, checked elsewhere."""
    channel = {
        "ChannelName": "train",
        "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "file:///data"}},
    }
    request = {
        "TrainingJobName": "j",
        "RoleArn": "arn:aws:iam::111111111111:role/r",
        "AlgorithmSpecification": {"TrainingImage": "/images/r", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "local", "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        "InputDataConfig": [channel, {**channel, "ChannelName": "test"}],
    }
    request["InputDataConfig"][1]["DataSource"] = {
        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "/srv/data"}
    }
    check_request("sagemaker", "CreateTrainingJob", request)
    request["InputDataConfig"][1]["DataSource"] = {
        "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "relative/data"}
    }
    message = _message("sagemaker", "CreateTrainingJob", request)
    assert "at 'inputDataConfig.2.member.dataSource.s3DataSource.s3Uri'" in message


def test_invoke_endpoint_headers() -> None:
    check_invoke_endpoint("ep", [(b"content-type", b"text/csv"), (b"x-other", b"\xff")])
    with pytest.raises(ValidationError) as raised:
        check_invoke_endpoint("ep", [(b"x-amzn-sagemaker-inference-id", b"a" * 65)])
    assert "at 'inferenceId'" in raised.value.message
    with pytest.raises(ValidationError):
        check_invoke_endpoint("bad_name", [])


def test_json_depth_counts_brackets_outside_strings() -> None:
    assert json_depth(b"{}") == 1
    assert json_depth(b'{"a": [[1], {"b": "[[[["}]}') == 3
    assert json_depth(b'{"a": "\\"[[[", "b": [[]]}') == 3
    assert json_depth(b'"unclosed [[[[') == 0
    assert json_depth(b"[" * 1000) == 1000


def test_json_depth_is_linear_on_adversarial_input() -> None:
    """An open string full of escaped quotes would make a naive scanner quadratic."""
    hostile = b'"' + b'\\"' * 4_000_000
    start = time.monotonic()
    assert json_depth(hostile) == 0
    assert json_depth(b"[]" * 4_000_000) == 1
    assert time.monotonic() - start < 5.0


def test_parse_refuses_what_is_not_a_json_object() -> None:
    assert parse_json_object(b"", 64) == {}
    for raw in (b"[1]", b"NaN", b'{"a": Infinity}', b"{", b"\xff"):
        with pytest.raises(SerializationError):
            parse_json_object(raw, 64)
    with pytest.raises(SerializationError, match="DOCKYARD_MAX_JSON_DEPTH"):
        parse_json_object(b'{"a":' + b"[" * 65 + b"]" * 65 + b"}", 64)


def test_large_bad_requests_cost_little_to_refuse() -> None:
    start = time.monotonic()
    variants = [{"VariantName": "bad_name"}] * 100_000
    message = _message(
        "sagemaker",
        "CreateEndpointConfig",
        {"EndpointConfigName": "c", "ProductionVariants": variants},
    )
    assert message.startswith('1 validation error detected: Value \'[{"VariantName":"bad_name"}')
    assert "Member must have length less than or equal to 10" in message
    # No maximum in the model here: the problems stop being collected at 100.
    desired = [{"VariantName": "bad_name", "DesiredInstanceCount": 0}] * 100_000
    message = _message(
        "sagemaker",
        "UpdateEndpointWeightsAndCapacities",
        {"EndpointName": "e", "DesiredWeightsAndCapacities": desired},
    )
    assert message.startswith("at least 100 validation errors detected: ")
    assert len(message) < 3000
    assert time.monotonic() - start < 2.0
