"""Predictor: the InvokeEndpoint request it builds from its (de)serializers, the SDK v1 names it
still answers to, and what reaches a real container and comes back from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

import dockyard.sdk as sagemaker
from dockyard.sdk.deserializers import JSONDeserializer, NumpyDeserializer
from dockyard.sdk.model import Model
from dockyard.sdk.predictor import Predictor
from dockyard.sdk.serializers import CSVSerializer, JSONSerializer
from tests.api.test_endpoints_api import make_echo_image
from tests.conftest import RunningServer


def test_request_carries_the_serialized_body_and_both_media_types() -> None:
    predictor = Predictor("ep", serializer=CSVSerializer(), deserializer=JSONDeserializer())
    assert predictor._create_request_args([[1, 2], [3, 4]]) == {
        "EndpointName": "ep",
        "ContentType": "text/csv",
        "Accept": "application/json",
        "Body": "1,2\n3,4",
    }


def test_optional_headers_and_initial_args_win() -> None:
    accept = ("application/x-npy", "text/csv")
    predictor = Predictor("ep", deserializer=NumpyDeserializer(accept=accept))
    args = predictor._create_request_args(
        b"raw",
        initial_args={"ContentType": "image/png", "EndpointName": "other"},
        target_variant="Blue",
        inference_id="id-1",
        custom_attributes="trace=7",
    )
    assert args == {
        "EndpointName": "other",
        "ContentType": "image/png",
        "Accept": "application/x-npy, text/csv",
        "TargetVariant": "Blue",
        "InferenceId": "id-1",
        "CustomAttributes": "trace=7",
        "Body": b"raw",
    }


def test_content_type_and_accept_follow_the_serializers_unless_set() -> None:
    predictor = Predictor("ep")
    assert (predictor.content_type, predictor.accept) == ("application/octet-stream", ("*/*",))
    predictor.serializer = JSONSerializer()
    assert predictor.content_type == "application/json"
    predictor.content_type = "application/json; charset=utf-8"
    predictor.accept = "text/csv"
    assert predictor._create_request_args({"a": 1})["ContentType"] == (
        "application/json; charset=utf-8"
    )
    assert predictor._create_request_args({"a": 1})["Accept"] == "text/csv"


def test_v1_names_still_work_with_a_warning() -> None:
    with pytest.deprecated_call(match="RealTimePredictor is the SageMaker SDK v1 name"):
        old = sagemaker.RealTimePredictor("ep")
    assert isinstance(old, Predictor)
    with pytest.deprecated_call(match="endpoint is the SageMaker SDK v1 name; use endpoint_name"):
        by_old_name = Predictor(endpoint="ep")
    assert by_old_name.endpoint_name == "ep"
    with pytest.deprecated_call(match="use endpoint_name"):
        assert by_old_name.endpoint == "ep"
    with pytest.deprecated_call(match="is a no-op"):
        Predictor("ep", content_type="text/csv")
    with pytest.deprecated_call(
        match=r"csv_serializer is .* use sagemaker.serializers.CSVSerializer"
    ):
        assert sagemaker.predictor.csv_serializer.serialize([1, 2]) == "1,2"
    assert sagemaker.predictor.json_deserializer.ACCEPT == ("application/json",)


def test_inference_components_are_refused() -> None:
    with pytest.raises(ValueError, match="inference components are not supported"):
        Predictor("ep", component_name="ic-1")
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        Predictor("ep", colour="blue")


@pytest.mark.slow
def test_headers_reach_the_container_and_errors_come_back_as_client_errors(
    sdk_server: RunningServer, tmp_path: Path
) -> None:
    model = Model(str(make_echo_image(tmp_path)), name="echo-model")
    predictor = model.deploy(
        2,
        "ml.m5.large",
        endpoint_name="echo",
        serializer=JSONSerializer(),
        deserializer=JSONDeserializer(),
    )
    answer = predictor.predict(
        {"x": [1, 2]},
        target_variant="AllTraffic",
        inference_id="req-42",
        custom_attributes="trace=abc",
    )
    assert json.loads(answer["body"]) == {"x": [1, 2]}
    assert answer["content_type"] == "application/json"
    assert answer["accept"] == "application/json"
    assert answer["inference_id"] == "req-42"
    assert answer["attributes"] == "trace=abc"

    with pytest.raises(ClientError) as failed:
        Predictor("echo").predict(b"fail")  # raw bytes: the echo container refuses these
    assert failed.value.response["Error"]["Code"] == "ModelError"
    assert failed.value.response["OriginalStatusCode"] == 400
    with pytest.raises(ClientError) as unknown:
        Predictor("no-such-endpoint").predict(b"x")
    assert unknown.value.response["Error"]["Code"] == "ValidationError"

    predictor.delete_model()  # before the endpoint: the model names come from its config
    predictor.delete_endpoint()
    client = sdk_server.client("sagemaker")
    assert client.list_models()["Models"] == []
    assert client.list_endpoint_configs()["EndpointConfigs"] == []
