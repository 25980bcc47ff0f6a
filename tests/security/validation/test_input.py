"""Issue 8, part 7 and the request bounds of part 5: bad input is a 4xx with an AWS-shaped error,
never a 500; the findings of the security review, each sent as it was found."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from tests.conftest import make_image
from tests.security.validation.conftest import InProcess
from tests.security.validation.wire import read_answer, signed_headers

TRAINING_GROUP = "/aws/sagemaker/TrainingJobs"


def _refused(answer: Any, code: str, *words: str) -> str:
    assert answer.status == 400, (answer.status, answer.body[:300])
    assert answer.code == code, answer.message
    for word in words:
        assert word in answer.message, answer.message
    return str(answer.message)


def test_deeply_nested_json_is_a_serialization_error(in_process: InProcess) -> None:
    """Found: 100,000 nested arrays → RecursionError → 500."""
    deep = b'{"ModelName": "m", "X": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    answer = in_process.api.sagemaker("CreateModel", deep)
    _refused(answer, "SerializationException", "100001 levels", "DOCKYARD_MAX_JSON_DEPTH")
    # Brackets inside strings are text, not nesting.
    text = json.dumps({"NameContains": "a", "X": "[" * 1000}).encode()
    assert in_process.api.sagemaker("ListModels", text).status == 200
    # Up to the limit (64) is accepted: unknown members are ignored, as SageMaker ignores them.
    nested = b'{"X": ' + b"[" * 63 + b"]" * 63 + b"}"
    assert in_process.api.sagemaker("ListModels", nested).status == 200
    too_deep = b'{"X": ' + b"[" * 64 + b"]" * 64 + b"}"
    _refused(in_process.api.sagemaker("ListModels", too_deep), "SerializationException")


@pytest.mark.parametrize("in_process", [{"max_json_depth": 8}], indirect=True)
def test_json_depth_is_a_setting(in_process: InProcess) -> None:
    nested = b'{"X": ' + b"[" * 7 + b"]" * 7 + b"}"
    assert in_process.api.sagemaker("ListModels", nested).status == 200
    deeper = b'{"X": ' + b"[" * 8 + b"]" * 8 + b"}"
    _refused(in_process.api.sagemaker("ListModels", deeper), "SerializationException", "at most 8")


def test_not_json_is_a_serialization_error(in_process: InProcess) -> None:
    api = in_process.api
    for raw in (b"{", b"[]", b'"text"', b"\xff\xfe", b'{"MaxResults": NaN}', b'{"a": 1e99999}'):
        answer = api.sagemaker("ListModels", raw)
        if raw == b'{"a": 1e99999}':
            assert answer.status == 200  # an unknown member: ignored, whatever its value
            continue
        _refused(answer, "SerializationException")


def test_get_log_events_start_time_past_64_bits(in_process: InProcess) -> None:
    """Found: startTime 2^64 → OverflowError (SQLite integers are 64-bit) → 500."""
    in_process.engine.metadata.append_log_events(TRAINING_GROUP, "job/algo-1", [(1, "hello")])
    request = {"logGroupName": TRAINING_GROUP, "logStreamName": "job/algo-1", "startTime": 2**64}
    message = _refused(in_process.api.logs("GetLogEvents", request), "ValidationException")
    assert (
        "Value '18446744073709551616' at 'startTime' failed to satisfy constraint: Member must "
        "have value less than or equal to 9223372036854775807"
    ) in message
    request.update(startTime=2**63 - 1)
    assert in_process.api.logs("GetLogEvents", request).parsed["events"] == []
    request.update(startTime=0)
    assert [
        e["message"] for e in in_process.api.logs("GetLogEvents", request).parsed["events"]
    ] == ["hello"]


def test_next_tokens_past_64_bits(in_process: InProcess) -> None:
    """Tokens are numbers that reach SQL: a huge one is an invalid token, not an overflow."""
    api = in_process.api
    for token in ("f/99999999999999999999999", "b/-99999999999999999999999"):
        request = {"logGroupName": TRAINING_GROUP, "logStreamName": "s", "nextToken": token}
        _refused(api.logs("GetLogEvents", request), "ValidationException", "nextToken")
    request = {"logGroupName": TRAINING_GROUP, "nextToken": "99999999999999999999999"}
    _refused(api.logs("DescribeLogStreams", request), "ValidationException", "nextToken")
    for operation in ("ListModels", "ListEndpoints", "ListTrainingJobs", "ListTransformJobs"):
        answer = api.sagemaker(operation, {"NextToken": "offset:99999999999999999999999"})
        _refused(answer, "ValidationException", "NextToken")


def test_long_like_prefix_is_bounded_by_the_model(in_process: InProcess) -> None:
    """Found: a 60,000-character `%` prefix → SQLite "LIKE pattern too complex" → 500."""
    request = {"logGroupName": TRAINING_GROUP, "logStreamNamePrefix": "%" * 60_000}
    _refused(
        in_process.api.logs("DescribeLogStreams", request),
        "ValidationException",
        "at 'logStreamNamePrefix' failed to satisfy constraint: Member must have length less "
        "than or equal to 512",
    )


def test_like_wildcards_in_user_strings_match_themselves(in_process: InProcess) -> None:
    metadata = in_process.engine.metadata
    for stream in ("job-a/algo-1", "job_b/algo-1", "jobXc/algo-1"):
        metadata.append_log_events(TRAINING_GROUP, stream, [(1, "line")])

    def streams(prefix: str) -> list[str]:
        answer = in_process.api.logs(
            "DescribeLogStreams", {"logGroupName": TRAINING_GROUP, "logStreamNamePrefix": prefix}
        )
        assert answer.status == 200, answer.message
        return [s["logStreamName"] for s in answer.parsed["logStreams"]]

    assert streams("job_") == ["job_b/algo-1"]
    assert streams("%") == []
    assert streams("job%") == []
    assert streams("job") == ["job-a/algo-1", "jobXc/algo-1", "job_b/algo-1"]
    # The longest prefix the model allows, all wildcards: within SQLite's LIKE limit.
    assert streams("%" * 512) == []


def test_nul_in_a_model_environment_is_refused(in_process: InProcess, tmp_path: Path) -> None:
    """Found: a model Environment value with \\u0000 left its endpoint Creating for ever."""
    image = make_image(tmp_path / "image", "print('serving')")
    api = in_process.api
    request = {
        "ModelName": "nul",
        "PrimaryContainer": {"Image": str(image), "Environment": {"GOOD": "a\u0000b"}},
    }
    message = _refused(api.sagemaker("CreateModel", request), "ValidationException")
    assert message == (
        "1 validation error detected: Value 'a\\u0000b' at 'primaryContainer.environment' failed "
        "to satisfy constraint: Map value must satisfy constraint: [Member must not contain the "
        "NUL character (\\u0000)]"
    )
    request["PrimaryContainer"]["Environment"] = {"BAD\u0000KEY": "x"}
    _refused(api.sagemaker("CreateModel", request), "ValidationException", "Map keys")
    _refused(api.sagemaker("DescribeModel", {"ModelName": "nul"}), "ValidationException")
    # A lone surrogate (valid JSON escape, not valid Unicode) would fail in SQLite's UTF-8.
    raw = json.dumps(request).replace("BAD\\u0000KEY", "K").replace('"x"', '"\\ud800"')
    _refused(api.sagemaker("CreateModel", raw.encode()), "ValidationException", "surrogate")


def test_nul_in_training_and_transform_strings_is_refused(in_process: InProcess) -> None:
    api = in_process.api
    training = {
        "TrainingJobName": "nul",
        "RoleArn": "arn:aws:iam::111111111111:role/r",
        "AlgorithmSpecification": {"TrainingImage": "/nowhere", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "local", "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        "HyperParameters": {"epochs": "1\u00002"},
    }
    _refused(api.sagemaker("CreateTrainingJob", training), "ValidationException", "NUL")
    training["HyperParameters"] = {}
    training["AlgorithmSpecification"]["ContainerArguments"] = ["ok", "no\u0000"]
    _refused(api.sagemaker("CreateTrainingJob", training), "ValidationException", "NUL")
    _refused(
        api.sagemaker("DescribeTrainingJob", {"TrainingJobName": "nul"}), "ValidationException"
    )


def test_numbers_outside_their_wire_type(in_process: InProcess) -> None:
    api = in_process.api
    _refused(
        api.sagemaker("ListModels", {"MaxResults": 2**64}),
        "ValidationException",
        "Member must have value less than or equal to 100",
    )
    _refused(
        api.sagemaker("ListModels", {"CreationTimeAfter": 1e300}),
        "ValidationException",
        "creationTimeAfter",
    )
    # VolumeSizeInGB has only a minimum in the model: a Java int's range bounds it.
    request = {
        "TrainingJobName": "big",
        "RoleArn": "arn:aws:iam::111111111111:role/r",
        "AlgorithmSpecification": {"TrainingImage": "/nowhere", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "local", "VolumeSizeInGB": 2**31},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    _refused(
        api.sagemaker("CreateTrainingJob", request),
        "ValidationException",
        "Value '2147483648' at 'resourceConfig.volumeSizeInGB' failed to satisfy constraint: "
        "Member must have value less than or equal to 2147483647",
    )


def test_wrong_json_types_are_serialization_errors(in_process: InProcess) -> None:
    api = in_process.api
    message = _refused(
        api.sagemaker("ListModels", {"MaxResults": "10", "SortOrder": ["Ascending"]}),
        "SerializationException",
    )
    assert message == (
        "2 serialization errors detected: Value '[\"Ascending\"]' at 'sortOrder' must be a "
        "string, not an array; Value '10' at 'maxResults' must be an integer, not a string"
    )
    # A type error is reported before any constraint: the value cannot be read at all.
    answer = api.sagemaker("ListModels", {"MaxResults": True, "NameContains": "a_b"})
    _refused(answer, "SerializationException", "'maxResults' must be an integer, not a boolean")


def test_errors_read_as_sagemaker_writes_them(in_process: InProcess) -> None:
    api = in_process.api
    message = _refused(
        api.sagemaker("DescribeTrainingJob", {"TrainingJobName": "bad_name"}),
        "ValidationException",
    )
    assert message == (
        "1 validation error detected: Value 'bad_name' at 'trainingJobName' failed to satisfy "
        "constraint: Member must satisfy regular expression pattern: "
        "^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
    )
    message = _refused(
        api.sagemaker(
            "CreateEndpointConfig", {"EndpointConfigName": "c", "ProductionVariants": []}
        ),
        "ValidationException",
    )
    assert message == (
        "1 validation error detected: Value '[]' at 'productionVariants' failed to satisfy "
        "constraint: Member must have length greater than or equal to 1"
    )
    message = _refused(
        api.sagemaker(
            "CreateEndpointConfig",
            {
                "EndpointConfigName": "c" * 64,
                "ProductionVariants": [
                    {"VariantName": "v", "ModelName": "m", "InitialInstanceCount": 0}
                ],
            },
        ),
        "ValidationException",
    )
    assert message.startswith("2 validation errors detected: ")
    assert (
        "at 'endpointConfigName' failed to satisfy constraint: Member must have length less"
        in message
    )
    assert (
        "Value '0' at 'productionVariants.1.member.initialInstanceCount' failed to satisfy "
        "constraint: Member must have value greater than or equal to 1"
    ) in message
    message = _refused(
        api.sagemaker("CreateEndpoint", {"EndpointName": "e"}), "ValidationException"
    )
    assert message == (
        "1 validation error detected: Value null at 'endpointConfigName' failed to satisfy "
        "constraint: Member must not be null"
    )
    message = _refused(
        api.sagemaker("ListTrainingJobs", {"StatusEquals": "Running"}), "ValidationException"
    )
    assert "at 'statusEquals' failed to satisfy constraint: Member must satisfy enum value " in (
        message
    )
    assert "set: [InProgress, Completed, Failed, Stopping, Stopped" in message


@pytest.mark.parametrize("in_process", [{"max_instance_count": 2}], indirect=True)
def test_instance_counts_are_bounded_by_a_setting(in_process: InProcess, tmp_path: Path) -> None:
    """Found: InstanceCount 1e9 passed every check."""
    api = in_process.api
    image = make_image(tmp_path / "image", "print('serving')")
    assert (
        api.sagemaker(
            "CreateModel", {"ModelName": "m", "PrimaryContainer": {"Image": str(image)}}
        ).status
        == 200
    )

    def config(name: str, count: int) -> dict[str, Any]:
        variant = {"VariantName": "v", "ModelName": "m", "InitialInstanceCount": count}
        return {"EndpointConfigName": name, "ProductionVariants": [variant]}

    assert api.sagemaker("CreateEndpointConfig", config("two", 2)).status == 200
    for count in (3, 10**9):
        message = _refused(
            api.sagemaker("CreateEndpointConfig", config("many", count)), "ResourceLimitExceeded"
        )
        assert message == (
            f"ProductionVariants.1.InitialInstanceCount {count} is more than this server allows "
            "per endpoint variant (2); the operator can raise DOCKYARD_MAX_INSTANCE_COUNT"
        )
    _refused(
        api.sagemaker("DescribeEndpointConfig", {"EndpointConfigName": "many"}),
        "ValidationException",
    )
    training = {
        "TrainingJobName": "many",
        "RoleArn": "arn:aws:iam::111111111111:role/r",
        "AlgorithmSpecification": {"TrainingImage": str(image), "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceCount": 10**9, "InstanceType": "local", "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }
    _refused(
        api.sagemaker("CreateTrainingJob", training),
        "ResourceLimitExceeded",
        "ResourceConfig.InstanceCount 1000000000",
        "per training job (2)",
        "DOCKYARD_MAX_INSTANCE_COUNT",
    )
    transform = {
        "TransformJobName": "many",
        "ModelName": "m",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(tmp_path)}}
        },
        "TransformOutput": {"S3OutputPath": str(tmp_path / "out")},
        "TransformResources": {"InstanceType": "local", "InstanceCount": 3},
    }
    _refused(
        api.sagemaker("CreateTransformJob", transform),
        "ResourceLimitExceeded",
        "per transform job (2)",
    )
    weights = {
        "EndpointName": "e",
        "DesiredWeightsAndCapacities": [{"VariantName": "v", "DesiredInstanceCount": 3}],
    }
    _refused(
        api.sagemaker("UpdateEndpointWeightsAndCapacities", weights),
        "ResourceLimitExceeded",
        "DesiredWeightsAndCapacities.1.DesiredInstanceCount 3",
    )
    listed = api.sagemaker("ListTrainingJobs", {}).parsed["TrainingJobSummaries"]
    assert listed == []


def test_invoke_endpoint_headers_follow_the_model(in_process: InProcess) -> None:
    api = in_process.api
    answer = api.invoke("e", b"1", {"X-Amzn-SageMaker-Target-Variant": "no_underscores"})
    assert answer.status == 400 and answer.code == "ValidationError"
    assert (
        "at 'targetVariant' failed to satisfy constraint: Member must satisfy regular"
        in answer.message
    )
    answer = api.invoke("e", b"1", {"X-Amzn-SageMaker-Custom-Attributes": "x" * 1025})
    assert answer.code == "ValidationError" and "'customAttributes'" in answer.message
    answer = api.invoke("e", b"1", {"Content-Type": "text/csv\u00e9"})
    assert answer.code == "ValidationError" and "'contentType'" in answer.message
    answer = api.invoke("e" * 64, b"1", {})
    assert answer.code == "ValidationError" and "'endpointName'" in answer.message
    answer = api.invoke("e", b"1", {"X-Amzn-SageMaker-Inference-Id": " leading-space"})
    assert answer.code == "ValidationError" and "'inferenceId'" in answer.message
    answer = api.invoke(
        "missing", b"1", {"Content-Type": "text/csv", "X-Amzn-SageMaker-Inference-Id": "id-1"}
    )
    assert answer.code == "ValidationError" and "not found" in answer.message


def test_every_path_and_method_answers_aws_shaped(in_process: InProcess) -> None:
    api = in_process.api
    for method, path, status in (("GET", "/", 405), ("POST", "/nowhere", 404)):
        url = api.base_url + path
        headers = signed_headers(api.credentials, "sagemaker", method, url, b"{}", {})
        response = api.run(api.client.request(method, url, content=b"{}", headers=headers))
        answer = read_answer("sagemaker", "ListModels", response)
        assert (answer.status, answer.code) == (status, "UnknownOperationException")
        # Unsigned, the same request is refused before anything else is looked at: as a JSON
        # API's when it names an X-Amz-Target, else as S3's (only S3 takes such paths).
        target = {"X-Amz-Target": "SageMaker.ListModels"}
        response = api.run(api.client.request(method, path, content=b"{}", headers=target))
        answer = read_answer("sagemaker", "ListModels", response)
        assert (answer.status, answer.code) == (403, "MissingAuthenticationTokenException")
        response = api.run(api.client.request(method, path, content=b"{}"))
        error = ElementTree.fromstring(response.content)
        assert response.status_code == 403 and error.findtext("Code") == "AccessDenied"
        assert "dockyard credentials" in (error.findtext("Message") or "")
    # An encoded slash is part of the endpoint name (as AWS routes), which the model refuses.
    answer = api.invoke("a/b", b"1", {})
    assert answer.code == "ValidationError" and "Value 'a/b' at 'endpointName'" in answer.message


def test_local_paths_the_file_system_cannot_look_up(in_process: InProcess, tmp_path: Path) -> None:
    """Found by the fuzz: a name over 255 bytes (255 "é" are 510) raised ENAMETOOLONG → 500
    wherever a local path was looked up: images, model data, channels, transform input."""
    api = in_process.api
    image = make_image(tmp_path / "image", "print('ok')")
    long = "é" * 200
    path_words = "Member must be a path this machine can look up"
    model = {"ModelName": "m", "PrimaryContainer": {"Image": long}}
    _refused(api.sagemaker("CreateModel", model), "ValidationException", path_words)
    model["PrimaryContainer"] = {"Image": str(image), "ModelDataUrl": f"file:///{long}"}
    _refused(api.sagemaker("CreateModel", model), "ValidationException", "'primaryContainer.model")
    training: dict[str, Any] = {
        "TrainingJobName": "long",
        "RoleArn": "arn:aws:iam::111111111111:role/r",
        "AlgorithmSpecification": {"TrainingImage": str(image), "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "local", "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"/{long}"}},
            }
        ],
    }
    _refused(api.sagemaker("CreateTrainingJob", training), "ValidationException", path_words)
    del training["InputDataConfig"]
    # Under an allowed folder (DOCKYARD_LOCAL_PATHS), so the name reaches the file system.
    code_dir = f"{tmp_path}/{long}"
    training["HyperParameters"] = {"sagemaker_submit_directory": json.dumps(code_dir)}
    _refused(api.sagemaker("CreateTrainingJob", training), "ValidationException", "cannot be read")
    # Long names that fit (a percent-encoded one counts decoded) are looked up as usual.
    fits = f"file://{tmp_path}" + "/%C3%A9" * 100
    model["PrimaryContainer"] = {"Image": str(image), "ModelDataUrl": fits}
    _refused(api.sagemaker("CreateModel", model), "ValidationException", "is not a file")
