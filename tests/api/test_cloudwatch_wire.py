"""CloudWatch's three protocols, with botocore as the oracle: what its serializers send reads
back into the request, what dockyard answers (results and errors) its parsers read."""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from starlette.responses import Response

from dockyard.api import cloudwatch_wire as wire
from dockyard.api import query_protocol

UTC = datetime.UTC
START = datetime.datetime(2026, 12, 2, 14, 0, 0, tzinfo=UTC)
END = datetime.datetime(2026, 12, 2, 14, 30, 0, 123000, tzinfo=UTC)

REQUEST: dict[str, Any] = {
    "MetricDataQueries": [
        {
            "Id": "loss",
            "MetricStat": {
                "Metric": {
                    "Namespace": "/aws/sagemaker/TrainingJobs",
                    "MetricName": "train:loss",
                    "Dimensions": [{"Name": "Host", "Value": "job-1/algo-2"}],
                },
                "Period": 60,
                "Stat": "p99.5",
            },
            "Label": "loss & more <here>",
            "ReturnData": False,
        }
    ],
    "StartTime": START,
    "EndTime": END,
    "ScanBy": "TimestampAscending",
    "MaxDatapoints": 7,
}
PLAIN = {
    **REQUEST,
    "StartTime": START.timestamp(),
    "EndTime": END.timestamp(),
}
RESULT: dict[str, Any] = {
    "MetricDataResults": [
        {
            "Id": "loss",
            "Label": "a <label> & more\x01",
            "Timestamps": [START.timestamp(), START.timestamp() + 60],
            "Values": [0.5, 1.0 / 3],
            "StatusCode": "PartialData",
        }
    ],
    "NextToken": "abc=",
    "Messages": [],
}
PROTOCOLS = {
    wire.Wire.CBOR: "smithy-rpc-v2-cbor",
    wire.Wire.JSON: "json",
    wire.Wire.QUERY: "query",
}


def serialized(protocol: wire.Wire, operation: str, params: dict[str, Any]) -> dict[str, Any]:
    model = wire.model().operation_model(operation)
    return dict(create_serializer(PROTOCOLS[protocol]).serialize_to_request(params, model))


def parsed(protocol: wire.Wire, operation: str, response: Response) -> dict[str, Any]:
    model = wire.model().operation_model(operation)
    shape = model.output_shape
    http = {
        "status_code": response.status_code,
        "headers": {k: v for k, v in response.headers.items()},
        "body": bytes(response.body),
    }
    return dict(create_parser(PROTOCOLS[protocol]).parse(http, shape))


@pytest.mark.parametrize("protocol", list(wire.Wire))
def test_a_request_botocore_sends_reads_back_into_its_params(protocol: wire.Wire) -> None:
    sent = serialized(protocol, "GetMetricData", REQUEST)
    headers = {k.lower(): v for k, v in sent["headers"].items()}
    path = sent["url_path"]
    assert wire.wire_of(path, headers.get) is protocol
    form: dict[str, str] = {}
    body = sent["body"]
    if protocol is wire.Wire.QUERY:
        form = {k: str(v) for k, v in body.items()}  # botocore hands the form as a dict
        body = b""
    name = wire.operation_name(protocol, path, headers.get, form)
    assert name == "GetMetricData"
    model = wire.model().operation_model(name)
    assert wire.read_request(protocol, model, body, form) == PLAIN


@pytest.mark.parametrize("protocol", list(wire.Wire))
def test_an_answer_reads_in_botocore_as_sent(protocol: wire.Wire) -> None:
    model = wire.model().operation_model("GetMetricData")
    got = parsed(protocol, "GetMetricData", wire.answer(protocol, model, RESULT))
    got.pop("ResponseMetadata")
    result = got["MetricDataResults"][0]
    assert [t.timestamp() for t in result.pop("Timestamps")] == [
        START.timestamp(),
        START.timestamp() + 60,
    ]
    expected = {**RESULT["MetricDataResults"][0]}
    expected.pop("Timestamps")
    if protocol is wire.Wire.QUERY:  # XML cannot hold a control character: U+FFFD instead
        expected["Label"] = expected["Label"].replace("\x01", "\ufffd")
    assert result == expected
    assert got["NextToken"] == "abc="


@pytest.mark.parametrize("protocol", list(wire.Wire))
def test_statistics_with_fractional_seconds_and_maps_read_back(protocol: wire.Wire) -> None:
    model = wire.model().operation_model("GetMetricStatistics")
    at = START.timestamp() + 0.25
    result = {
        "Label": "ModelLatency",
        "Datapoints": [
            {
                "Timestamp": at,
                "Unit": "Microseconds",
                "SampleCount": 100.0,
                "ExtendedStatistics": {"p50": 1234.5, "p99.9": 1e-7},
            }
        ],
    }
    got = parsed(protocol, "GetMetricStatistics", wire.answer(protocol, model, result))
    (point,) = got["Datapoints"]
    assert point["Timestamp"].timestamp() == at
    assert point["ExtendedStatistics"] == {"p50": 1234.5, "p99.9": 1e-7}
    assert point["SampleCount"] == 100.0
    assert point["Unit"] == "Microseconds"


@pytest.mark.parametrize("protocol", list(wire.Wire))
def test_modeled_errors_read_as_their_exception(protocol: wire.Wire) -> None:
    response = wire.error(protocol, "InvalidParameterCombination", "too many <points> & so", 400)
    assert response.status_code == 400
    got = parsed(protocol, "GetMetricStatistics", response)
    assert got["Error"]["Code"] == "InvalidParameterCombination"
    assert got["Error"]["Message"] == "too many <points> & so"
    if protocol is not wire.Wire.QUERY:
        # botocore keeps the JSON code too, for the modeled exception's lookup
        assert got["Error"]["QueryErrorCode"] == "InvalidParameterCombinationException"


@pytest.mark.parametrize("protocol", list(wire.Wire))
def test_unmodeled_errors_keep_their_code_and_status(protocol: wire.Wire) -> None:
    response = wire.error(protocol, "SignatureDoesNotMatch", "bad signature", 403)
    assert response.status_code == 403
    got = parsed(protocol, "ListMetrics", response)
    assert got["Error"]["Code"] == "SignatureDoesNotMatch"
    assert got["Error"]["Message"] == "bad signature"


def test_a_query_form_with_a_bad_number_is_refused_with_where() -> None:
    model = wire.model().operation_model("GetMetricStatistics")
    with pytest.raises(Exception, match=r"'Period'"):
        query_protocol.read_form({"Period": "sixty"}, model.input_shape)


def test_query_form_reads_url_and_body_and_empty_lists() -> None:
    form = wire.query_form("Action=ListMetrics", b"Namespace=AWS%2FSageMaker&Dimensions=")
    assert dict(parse_qsl("Action=ListMetrics")) == {"Action": "ListMetrics"}
    model = wire.model().operation_model("ListMetrics")
    assert query_protocol.read_form(form, model.input_shape) == {
        "Namespace": "AWS/SageMaker",
        "Dimensions": [],
    }
