"""The CloudWatch subset against a real server: a two-host training job's metric read back with
boto3 (smithy-rpc-v2-cbor), with botocore's JSON and query serializers and parsers, and with
the aws CLI; errors in each protocol's shape."""

from __future__ import annotations

import json
import math
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from dockyard.api.cloudwatch_wire import model as cloudwatch_model
from dockyard.storage.metadata import MetricPoint
from tests.conftest import RunningServer, make_image, training_request, wait_for_job

NAMESPACE = "/aws/sagemaker/TrainingJobs"
STEPS = 20
# Each host prints its own loss curve, the host's number in it, so every value is told apart.
PROGRAM = """
import json, time
host = json.load(open("/opt/ml/input/config/resourceconfig.json"))["current_host"]
n = int(host.split("-")[1])
for step in range(20):
    print(f"step={step} loss={n + 1.0 / (step + 1):.6f}", flush=True)
    time.sleep(0.05)
"""


def printed_losses(server: RunningServer, job: str) -> dict[str, list[float]]:
    """What each host printed, read from its log through the Logs API (the job's own output)."""
    logs = server.client("logs")
    streams = logs.describe_log_streams(logGroupName=NAMESPACE, logStreamNamePrefix=f"{job}/")[
        "logStreams"
    ]
    found: dict[str, list[float]] = {}
    for stream in streams:
        host = stream["logStreamName"].split("/")[1].rsplit("-", 1)[0]  # job/algo-1-<epoch>
        events = logs.get_log_events(
            logGroupName=NAMESPACE, logStreamName=stream["logStreamName"], startFromHead=True
        )["events"]
        found[host] = [
            float(m.group(1))
            for e in events
            if (m := re.fullmatch(r"step=\d+ loss=([0-9.]+)", e["message"]))
        ]
    return found


def run_job(server: RunningServer, tmp_path: Path, name: str) -> dict[str, Any]:
    sagemaker = server.client("sagemaker")
    request = training_request(name, make_image(tmp_path / "img", PROGRAM))
    request["ResourceConfig"]["InstanceCount"] = 2
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "train:loss", "Regex": r"loss=([0-9.]+)"}
    ]
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, name)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    return described


def stored(server: RunningServer, job: str, host: str | None = None) -> list[MetricPoint]:
    return server.engine.metadata.metric_series(job, "train:loss", host=host)


def window(points: list[MetricPoint]) -> tuple[datetime, datetime]:
    """A StartTime and EndTime around the points, a minute either side."""
    first = min(p.timestamp for p in points)
    last = max(p.timestamp for p in points)
    return (
        datetime.fromtimestamp(math.floor(first / 60) * 60 - 60, UTC),
        datetime.fromtimestamp(math.floor(last / 60) * 60 + 120, UTC),
    )


def by_period(points: list[MetricPoint], t0: float, period: int) -> dict[int, list[float]]:
    """The expected grouping: each point in the period [t0 + k·period, ...) that holds it."""
    groups: dict[int, list[float]] = defaultdict(list)
    for p in points:
        groups[int(t0 + (p.timestamp - t0) // period * period)].append(p.value)
    return groups


def test_a_two_host_jobs_metric_reads_back_exactly(server: RunningServer, tmp_path: Path) -> None:
    described = run_job(server, tmp_path, "curve")
    printed = printed_losses(server, "curve")
    assert sorted(printed) == ["algo-1", "algo-2"]
    assert all(len(values) == STEPS for values in printed.values())
    every = stored(server, "curve")
    assert sorted(p.value for p in every) == sorted(printed["algo-1"] + printed["algo-2"])
    start, end = window(every)
    cloudwatch = server.client("cloudwatch")

    # Per host, as SageMaker publishes (Host = <job>/algo-n): one period for the whole run.
    for host, values in printed.items():
        answer = cloudwatch.get_metric_statistics(
            Namespace=NAMESPACE,
            MetricName="train:loss",
            Dimensions=[{"Name": "Host", "Value": f"curve/{host}"}],
            StartTime=start,
            EndTime=end,
            Period=3600,
            Statistics=["SampleCount", "Sum", "Minimum", "Maximum", "Average"],
        )
        assert answer["Label"] == "train:loss"
        points = answer["Datapoints"]
        assert sum(p["SampleCount"] for p in points) == STEPS
        assert sum(p["Sum"] for p in points) == pytest.approx(sum(values), rel=1e-12)
        assert min(p["Minimum"] for p in points) == min(values)
        assert max(p["Maximum"] for p in points) == max(values)
        assert {p["Unit"] for p in points} == {"None"}

    # Every host together, as the SageMaker SDK asks (TrainingJobName): each 1 s period exact.
    answer = cloudwatch.get_metric_statistics(
        Namespace=NAMESPACE,
        MetricName="train:loss",
        Dimensions=[{"Name": "TrainingJobName", "Value": "curve"}],
        StartTime=start,
        EndTime=end,
        Period=1,
        Statistics=["Average", "SampleCount", "Maximum"],
    )
    expected = by_period(every, start.timestamp(), 1)
    got = {int(p["Timestamp"].timestamp()): p for p in answer["Datapoints"]}
    assert sorted(got) == sorted(expected)
    for t, values in expected.items():
        assert got[t]["SampleCount"] == len(values)
        assert got[t]["Average"] == pytest.approx(sum(values) / len(values), rel=1e-12)
        assert got[t]["Maximum"] == max(values)

    # FinalMetricDataList's value is the last point stored, one of the hosts' last lines.
    (final,) = described["FinalMetricDataList"]
    assert final["MetricName"] == "train:loss"
    assert final["Value"] in {printed["algo-1"][-1], printed["algo-2"][-1]}
    assert final["Value"] == stored(server, "curve")[-1].value


def test_get_metric_data_pages_every_point_in_order(server: RunningServer, tmp_path: Path) -> None:
    run_job(server, tmp_path, "paged")
    every = stored(server, "paged", host="algo-2")
    start, end = window(every)
    cloudwatch = server.client("cloudwatch")
    query = {
        "Id": "loss2",
        "MetricStat": {
            "Metric": {
                "Namespace": NAMESPACE,
                "MetricName": "train:loss",
                "Dimensions": [{"Name": "Host", "Value": "paged/algo-2"}],
            },
            "Period": 1,
            "Stat": "p100",
        },
        "Label": "algo-2 loss",
    }
    hidden = {**query, "Id": "hidden", "ReturnData": False}
    timestamps: list[float] = []
    values: list[float] = []
    token: dict[str, str] = {}
    pages = 0
    while True:
        answer = cloudwatch.get_metric_data(
            MetricDataQueries=[query, hidden],
            StartTime=start,
            EndTime=end,
            ScanBy="TimestampAscending",
            MaxDatapoints=3,
            **token,
        )
        pages += 1
        (result,) = answer["MetricDataResults"]
        assert result["Id"] == "loss2" and result["Label"] == "algo-2 loss"
        timestamps += [t.timestamp() for t in result["Timestamps"]]
        values += result["Values"]
        if "NextToken" not in answer:
            assert result["StatusCode"] == "Complete"
            break
        assert result["StatusCode"] == "PartialData"
        token = {"NextToken": answer["NextToken"]}
    expected = by_period(every, start.timestamp(), 1)
    assert timestamps == sorted(expected)
    assert values == [max(expected[int(t)]) for t in timestamps]
    assert pages == math.ceil(len(expected) / 3)

    # Newest first by default; the whole series in one answer.
    answer = cloudwatch.get_metric_data(MetricDataQueries=[query], StartTime=start, EndTime=end)
    (result,) = answer["MetricDataResults"]
    assert [t.timestamp() for t in result["Timestamps"]] == sorted(expected, reverse=True)

    with pytest.raises(ClientError) as bad_token:
        cloudwatch.get_metric_data(
            MetricDataQueries=[query], StartTime=start, EndTime=end, NextToken="bm9wZQ=="
        )
    assert bad_token.value.response["Error"]["Code"] == "InvalidNextToken"
    with pytest.raises(cloudwatch.exceptions.InvalidParameterValueException) as math_asked:
        cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": "sum", "Expression": "SUM(METRICS())"}],
            StartTime=start,
            EndTime=end,
        )
    assert "metric math" in math_asked.value.response["Error"]["Message"]


def test_list_metrics_names_each_series(server: RunningServer, tmp_path: Path) -> None:
    run_job(server, tmp_path, "listed")
    cloudwatch = server.client("cloudwatch")
    metrics = cloudwatch.list_metrics(Namespace=NAMESPACE)["Metrics"]
    assert sorted(
        (m["MetricName"], tuple((d["Name"], d["Value"]) for d in m["Dimensions"])) for m in metrics
    ) == [
        ("train:loss", (("Host", "listed/algo-1"),)),
        ("train:loss", (("Host", "listed/algo-2"),)),
        ("train:loss", (("TrainingJobName", "listed"),)),
    ]
    only_job = cloudwatch.list_metrics(Dimensions=[{"Name": "TrainingJobName"}])["Metrics"]
    assert [m["Dimensions"] for m in only_job] == [[{"Name": "TrainingJobName", "Value": "listed"}]]
    assert cloudwatch.list_metrics(Namespace="AWS/SageMaker")["Metrics"] == []
    with pytest.raises(ClientError) as bad_token:
        cloudwatch.list_metrics(NextToken="nope")
    assert bad_token.value.response["Error"]["Code"] == "InvalidNextToken"


def test_cloudwatch_rules_are_refused_with_its_codes(server: RunningServer) -> None:
    cloudwatch = server.client("cloudwatch")
    base: dict[str, Any] = {
        "Namespace": NAMESPACE,
        "MetricName": "train:loss",
        "StartTime": datetime(2026, 1, 1, tzinfo=UTC),
        "EndTime": datetime(2026, 1, 2, tzinfo=UTC),
        "Statistics": ["Average"],
    }
    cases = [
        ({"Period": 61}, cloudwatch.exceptions.InvalidParameterValueException, "multiple of 60"),
        ({"Period": 7}, cloudwatch.exceptions.InvalidParameterValueException, "multiple of 60"),
        (
            {"Period": 60},  # a day of minutes: 1440 datapoints is the limit, and allowed
            None,
            None,
        ),
        (
            {"Period": 30},
            cloudwatch.exceptions.InvalidParameterCombinationException,
            "exceeds the limit of 1440",
        ),
        (
            {"Period": 60, "ExtendedStatistics": ["p99"]},
            cloudwatch.exceptions.InvalidParameterCombinationException,
            "mutually exclusive",
        ),
        (
            {"Period": 60, "Statistics": [], "ExtendedStatistics": ["p101"]},
            cloudwatch.exceptions.InvalidParameterValueException,
            "p0.0 to p100",
        ),
        (
            {"Period": 60, "EndTime": datetime(2025, 1, 1, tzinfo=UTC)},
            cloudwatch.exceptions.InvalidParameterValueException,
            "StartTime must be less than",
        ),
    ]
    for change, exception, words in cases:
        request = {**base, **change}
        if request.get("Statistics") == []:
            del request["Statistics"]
        if exception is None:
            assert cloudwatch.get_metric_statistics(**request)["Datapoints"] == []
            continue
        with pytest.raises(exception) as refused:
            cloudwatch.get_metric_statistics(**request)
        assert words in refused.value.response["Error"]["Message"], change
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


# -- the JSON and query protocols, sent as older botocore and other SDKs send them -----------


def send(
    server: RunningServer,
    protocol: str,
    operation: str,
    params: dict[str, Any],
    validate: bool = True,
) -> Any:
    """`operation` serialized by botocore for `protocol` (checked by botocore first unless not
    `validate`), signed by its SigV4 signer, sent with httpx; parsed by botocore's parser of
    that protocol."""
    model = cloudwatch_model().operation_model(operation)
    serializer = create_serializer(protocol, include_validation=validate)
    request = serializer.serialize_to_request(params, model)
    body = request["body"]
    if isinstance(body, dict):  # the query serializer hands a form
        body = "&".join(f"{k}={v}" for k, v in _form(body))
    aws = AWSRequest(
        method="POST", url=server.url + request["url_path"], data=body, headers=request["headers"]
    )
    key = server.access_key
    SigV4Auth(
        Credentials(key.access_key_id, key.secret_access_key), "monitoring", "us-east-1"
    ).add_auth(aws)
    response = httpx.post(aws.url, content=aws.body, headers=dict(aws.headers))
    parsed = create_parser(protocol).parse(
        {
            "status_code": response.status_code,
            "headers": response.headers,
            "body": response.content,
        },
        model.output_shape,
    )
    return response, parsed


def _form(body: dict[str, Any]) -> list[tuple[str, str]]:
    from urllib.parse import quote

    return [(quote(k, safe=""), quote(str(v), safe="")) for k, v in body.items()]


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_older_protocols_serve_the_same_points(
    server: RunningServer, tmp_path: Path, protocol: str
) -> None:
    run_job(server, tmp_path, f"wire-{protocol}")
    every = stored(server, f"wire-{protocol}", host="algo-1")
    start, end = window(every)
    params = {
        "Namespace": NAMESPACE,
        "MetricName": "train:loss",
        "Dimensions": [{"Name": "Host", "Value": f"wire-{protocol}/algo-1"}],
        "StartTime": start,
        "EndTime": end,
        "Period": 1,
        "ExtendedStatistics": ["p50", "p0.0"],
    }
    response, parsed = send(server, protocol, "GetMetricStatistics", params)
    assert response.status_code == 200, response.text
    expected = by_period(every, start.timestamp(), 1)
    got = {int(p["Timestamp"].timestamp()): p["ExtendedStatistics"] for p in parsed["Datapoints"]}
    assert sorted(got) == sorted(expected)
    for t, values in expected.items():
        ordered = sorted(values)
        assert got[t] == {"p50": ordered[math.ceil(len(ordered) / 2) - 1], "p0.0": ordered[0]}

    response, parsed = send(server, protocol, "ListMetrics", {"Namespace": NAMESPACE})
    assert len(parsed["Metrics"]) == 3

    # A modeled error reads as its code, in this protocol's shape.
    response, parsed = send(server, protocol, "GetMetricStatistics", {**params, "Period": 61})
    assert response.status_code == 400
    assert parsed["Error"]["Code"] == "InvalidParameterValue"
    assert "multiple of 60" in parsed["Error"]["Message"]
    if protocol == "query":
        assert response.headers["content-type"].startswith("text/xml")
    else:
        assert response.headers["x-amzn-query-error"] == "InvalidParameterValue;Sender"

    # A request that misses a required member: MissingParameter.
    without_period = {k: v for k, v in params.items() if k != "Period"}
    response, parsed = send(server, protocol, "GetMetricStatistics", without_period, False)
    assert parsed["Error"]["Code"] == "MissingParameter", response.text


@pytest.mark.parametrize("protocol", ["smithy-rpc-v2-cbor", "json", "query"])
def test_a_wrong_signature_is_refused_in_the_protocols_shape(
    server: RunningServer, protocol: str
) -> None:
    model = cloudwatch_model().operation_model("ListMetrics")
    request = create_serializer(protocol).serialize_to_request({}, model)
    body = request["body"]
    if isinstance(body, dict):
        body = "&".join(f"{k}={v}" for k, v in _form(body))
    aws = AWSRequest(
        method="POST", url=server.url + request["url_path"], data=body, headers=request["headers"]
    )
    key = server.access_key
    SigV4Auth(Credentials(key.access_key_id, "not-the-secret"), "monitoring", "us-east-1").add_auth(
        aws
    )
    response = httpx.post(aws.url, content=aws.body, headers=dict(aws.headers))
    assert response.status_code == 403
    parsed = create_parser(protocol).parse(
        {"status_code": 403, "headers": response.headers, "body": response.content},
        model.output_shape,
    )
    # The query protocol's name for it, as AWS's query services; the JSON services' otherwise.
    expected = "SignatureDoesNotMatch" if protocol == "query" else "InvalidSignatureException"
    assert parsed["Error"]["Code"] == expected

    # Unsigned: no credential names the service, the request's form does (not for the query
    # protocol's POST /, which could be any query API: that one is refused in JSON).
    unsigned = httpx.post(aws.url, content=aws.body, headers=request["headers"])
    assert unsigned.status_code == 403
    if protocol != "query":
        parsed = create_parser(protocol).parse(
            {"status_code": 403, "headers": unsigned.headers, "body": unsigned.content},
            model.output_shape,
        )
        assert parsed["Error"]["Code"] == "MissingAuthenticationTokenException"


def test_the_aws_cli_reads_a_jobs_statistics(
    server: RunningServer, tmp_path: Path, aws: Any
) -> None:
    run_job(server, tmp_path, "cli")
    every = stored(server, "cli")
    start, end = window(every)
    done = aws(
        "cloudwatch",
        "get-metric-statistics",
        "--namespace",
        NAMESPACE,
        "--metric-name",
        "train:loss",
        "--dimensions",
        "Name=TrainingJobName,Value=cli",
        "--start-time",
        start.isoformat(),
        "--end-time",
        end.isoformat(),
        "--period",
        "60",
        "--statistics",
        "SampleCount",
        "Maximum",
    )
    points = json.loads(done.stdout)["Datapoints"]
    assert sum(p["SampleCount"] for p in points) == 2 * STEPS
    assert max(p["Maximum"] for p in points) == max(p.value for p in every)


def test_endpoint_buckets_read_per_variant_and_instance(server: RunningServer) -> None:
    """Endpoint metrics as the router's recorder stores them (per-second buckets per instance),
    written here through the storage API, read with boto3."""
    from dockyard.engine import metric_histogram
    from dockyard.storage.metadata import EndpointMetricBucket

    now = math.floor(datetime.now(UTC).timestamp() / 60) * 60 - 120
    latencies = {
        "AllTraffic-1": [float(v) for v in range(1000, 61000, 1000)],
        "AllTraffic-2": [2500.0] * 40,
    }
    buckets = []
    for instance, samples in latencies.items():
        histogram: dict[int, int] = defaultdict(int)
        for s in samples:
            histogram[metric_histogram.bin_of(s)] += 1
        for name, values, bins in (
            ("ModelLatency", samples, dict(histogram)),
            ("Invocations", [1.0] * len(samples), {}),
            ("Invocation5XXErrors", [0.0] * len(samples), {}),
        ):
            buckets.append(
                EndpointMetricBucket(
                    "ep", "AllTraffic", instance, name, now + 5, len(values), sum(values),
                    min(values), max(values), bins,
                )
            )  # fmt: skip
    server.engine.metadata.add_endpoint_metric_buckets(buckets)
    cloudwatch = server.client("cloudwatch")
    variant = [
        {"Name": "EndpointName", "Value": "ep"},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    window = {
        "StartTime": datetime.fromtimestamp(now, UTC),
        "EndTime": datetime.fromtimestamp(now + 60, UTC),
        "Period": 60,
    }
    (invocations,) = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="Invocations", Dimensions=variant,
        Statistics=["Sum"], **window,
    )["Datapoints"]  # fmt: skip
    assert invocations["Sum"] == 100.0 and invocations["Unit"] == "None"
    (errors,) = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="Invocation5XXErrors", Dimensions=variant,
        Statistics=["Sum", "SampleCount"], **window,
    )["Datapoints"]  # fmt: skip
    assert (errors["Sum"], errors["SampleCount"]) == (0.0, 100.0)
    (latency,) = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="ModelLatency", Dimensions=variant,
        ExtendedStatistics=["p50", "p99"], **window,
    )["Datapoints"]  # fmt: skip
    assert latency["Unit"] == "Microseconds"
    every = sorted(latencies["AllTraffic-1"] + latencies["AllTraffic-2"])
    for name, p in (("p50", 50), ("p99", 99)):
        exact = every[math.ceil(p * len(every) / 100) - 1]
        assert latency["ExtendedStatistics"][name] == pytest.approx(
            exact, rel=metric_histogram.RELATIVE_ERROR
        )
    # One instance: the dockyard extension dimension InstanceId.
    one = [*variant, {"Name": "InstanceId", "Value": "AllTraffic-2"}]
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": "calls",
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/SageMaker", "MetricName": "Invocations",
                               "Dimensions": one},
                    "Period": 1,
                    "Stat": "Sum",
                },
            }
        ],
        StartTime=window["StartTime"],
        EndTime=window["EndTime"],
    )  # fmt: skip
    (result,) = answer["MetricDataResults"]
    assert result["Values"] == [40.0] and result["StatusCode"] == "Complete"
    assert [t.timestamp() for t in result["Timestamps"]] == [now + 5]
    names = cloudwatch.list_metrics(Namespace="AWS/SageMaker", MetricName="Invocations")
    assert len(names["Metrics"]) == 3  # the variant, and each of its two instances


@pytest.mark.slow
def test_an_endpoint_invoked_100_times_reads_100_invocations(
    server: RunningServer, tmp_path: Path
) -> None:
    """The router's recorder, read at once (not flushed yet) and after its flush."""
    from dockyard.engine import metric_histogram
    from tests.api.test_endpoints_api import deploy, make_echo_image

    described = deploy(server, make_echo_image(tmp_path), "watched", count=2)
    assert described["EndpointStatus"] == "InService", described.get("FailureReason")
    started = datetime.now(UTC)
    runtime = server.client("sagemaker-runtime")
    for i in range(100):
        runtime.invoke_endpoint(EndpointName="watched", Body=f"{i}".encode())
    cloudwatch = server.client("cloudwatch")
    variant = [
        {"Name": "EndpointName", "Value": "watched"},
        {"Name": "VariantName", "Value": "AllTraffic"},
    ]
    window: dict[str, Any] = {
        "StartTime": started - timedelta(minutes=1),
        "EndTime": datetime.now(UTC) + timedelta(minutes=1),
        "Period": 60,
    }

    def sums(metric: str, dimensions: list[dict[str, str]]) -> float:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SageMaker",
            MetricName=metric,
            Dimensions=dimensions,
            Statistics=["Sum"],
            **window,
        )["Datapoints"]
        return float(sum(p["Sum"] for p in points))

    for flushed in (False, True):
        if flushed:
            server.engine.endpoint_metrics.flush()
        assert sums("Invocations", variant) == 100.0
        assert sums("Invocation5XXErrors", variant) == 0.0
        instances = [
            m["Dimensions"]
            for m in cloudwatch.list_metrics(
                Namespace="AWS/SageMaker",
                MetricName="Invocations",
                Dimensions=[{"Name": "InstanceId"}],
            )["Metrics"]
        ]
        assert len(instances) == 2
        assert sum(sums("Invocations", d) for d in instances) == 100.0
        # InvocationsPerInstance: each invocation is 1/2 of one for each of the 2 instances.
        assert sums("InvocationsPerInstance", variant) == pytest.approx(50.0)

    # Latency percentiles: what the stored per-second histograms, merged, give.
    answer = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName="ModelLatency",
        Dimensions=variant,
        ExtendedStatistics=["p50", "p99"],
        **window,
    )
    buckets = server.engine.endpoint_metrics.buckets("watched", "ModelLatency", "AllTraffic")
    assert sum(b.count for b in buckets) == 100
    for point in answer["Datapoints"]:
        assert point["Unit"] == "Microseconds"
        t = point["Timestamp"].timestamp()
        inside = [b for b in buckets if t <= b.start < t + 60]
        merged: dict[int, int] = {}
        for b in inside:
            merged = metric_histogram.merge(merged, b.histogram)
        low = min(b.minimum for b in inside)
        high = max(b.maximum for b in inside)
        for name, p in (("p50", 50), ("p99", 99)):
            expected = min(max(metric_histogram.percentile(merged, p), low), high)
            assert point["ExtendedStatistics"][name] == expected


def test_bodies_no_client_would_send_get_4xx_in_shape(server: RunningServer) -> None:
    from tests.conftest import signed_request

    def post(path: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return signed_request(
            server.url, "POST", path, body, headers, server.access_key, service="monitoring"
        )

    cbor_path = "/service/GraniteServiceVersion20100801/operation/"
    cbor = {"smithy-protocol": "rpc-v2-cbor", "content-type": "application/cbor"}
    statistics = cloudwatch_model().operation_model("GetMetricStatistics").output_shape
    cases = [
        # not CBOR; a map nested past any CloudWatch input; a timestamp tag holding text; a
        # well-formed map with bytes after it
        ("smithy-rpc-v2-cbor", cbor_path + "GetMetricStatistics", b"\xff\x00", cbor,
         "SerializationException"),
        ("smithy-rpc-v2-cbor", cbor_path + "ListMetrics", b"\xa0\xa0", cbor,
         "SerializationException"),
        ("smithy-rpc-v2-cbor", cbor_path + "GetMetricStatistics", b"\x81" * 1000, cbor,
         "SerializationException"),
        ("smithy-rpc-v2-cbor", cbor_path + "GetMetricStatistics",
         b"\xa1\x69StartTime\xc1\x63abc", cbor, "SerializationException"),
        ("smithy-rpc-v2-cbor", cbor_path + "PutMetricData", b"\xa0", cbor,
         "UnknownOperationException"),
        ("json", "/", b'{"Namespace": 5}',
         {"x-amz-target": "GraniteServiceVersion20100801.ListMetrics",
          "content-type": "application/x-amz-json-1.0"}, "InvalidParameterValue"),
        ("json", "/", b"[1]",
         {"x-amz-target": "GraniteServiceVersion20100801.ListMetrics",
          "content-type": "application/x-amz-json-1.0"}, "SerializationException"),
        ("query", "/", b"Action=GetMetricStatistics&Version=2010-08-01&Period=sixty",
         {"content-type": "application/x-www-form-urlencoded"}, "InvalidParameterValue"),
        ("query", "/", b"Action=DeleteAlarms&Version=2010-08-01",
         {"content-type": "application/x-www-form-urlencoded"}, "InvalidAction"),
    ]  # fmt: skip
    for protocol, path, body, headers, code in cases:
        response = post(path, body, headers)
        assert response.status_code == 400, (body, response.text)
        parsed = create_parser(protocol).parse(
            {"status_code": 400, "headers": response.headers, "body": response.content},
            statistics,
        )
        assert parsed["Error"]["Code"] == code, (body, parsed)
        assert parsed["Error"]["Message"], body
