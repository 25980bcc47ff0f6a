"""The CloudWatch Logs API over SageMaker's log groups, through boto3's logs client:
DescribeLogGroups, DescribeLogStreams, GetLogEvents (tokens) and FilterLogEvents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from dockyard.engine.log_filters import parse
from tests.conftest import RunningServer, make_image, training_request, wait_for_job

TRAINING = "/aws/sagemaker/TrainingJobs"
TRANSFORM = "/aws/sagemaker/TransformJobs"
ENDPOINTS = "/aws/sagemaker/Endpoints"


def _error(call: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as error:
        call(**kwargs)
    return dict(error.value.response)


@pytest.fixture
def logs(server: RunningServer) -> Any:
    metadata = server.engine.metadata
    metadata.append_log_events(
        TRAINING, "job-a/algo-1-1", [(1000, "start a"), (3000, "ERROR disk full")]
    )
    metadata.append_log_events(
        TRAINING, "job-a/algo-2-1", [(2000, "start b"), (4000, "error: minor")]
    )
    metadata.append_log_events(TRAINING, "job-b/algo-1-1", [(1500, "other job ERROR")])
    metadata.append_log_events(TRANSFORM, "tj/algo-1-1", [(10, "transform line")])
    metadata.append_log_events(f"{ENDPOINTS}/ep-1", "AllTraffic/i-1", [(20, "serving")])
    metadata.append_log_events(f"{ENDPOINTS}/ep-2", "AllTraffic/i-1", [(30, "serving too")])
    return server.client("logs")


def test_describe_log_groups(logs: Any) -> None:
    answer = logs.describe_log_groups()
    names = [group["logGroupName"] for group in answer["logGroups"]]
    assert names == [f"{ENDPOINTS}/ep-1", f"{ENDPOINTS}/ep-2", TRAINING, TRANSFORM]
    assert answer["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    group = answer["logGroups"][2]
    assert group["arn"] == f"arn:aws:logs:us-east-1:000000000000:log-group:{TRAINING}:*"
    assert group["storedBytes"] == len("start aERROR disk fullstart berror: minorother job ERROR")
    prefixed = logs.describe_log_groups(logGroupNamePrefix=ENDPOINTS)["logGroups"]
    assert [g["logGroupName"] for g in prefixed] == [f"{ENDPOINTS}/ep-1", f"{ENDPOINTS}/ep-2"]
    pattern = logs.describe_log_groups(logGroupNamePattern="jobs")["logGroups"]
    assert [g["logGroupName"] for g in pattern] == [TRAINING, TRANSFORM]
    pages = logs.get_paginator("describe_log_groups").paginate(PaginationConfig={"PageSize": 1})
    assert [len(page["logGroups"]) for page in pages] == [1, 1, 1, 1]
    both = _error(logs.describe_log_groups, logGroupNamePrefix="/a", logGroupNamePattern="b")
    assert both["Error"]["Code"] == "InvalidParameterException"


def test_describe_log_streams(logs: Any) -> None:
    streams = logs.describe_log_streams(logGroupName=TRAINING)["logStreams"]
    assert [s["logStreamName"] for s in streams] == [
        "job-a/algo-1-1", "job-a/algo-2-1", "job-b/algo-1-1"
    ]  # fmt: skip
    newest = logs.describe_log_streams(
        logGroupName=TRAINING, orderBy="LastEventTime", descending=True
    )["logStreams"]
    assert [s["logStreamName"] for s in newest] == [
        "job-a/algo-2-1", "job-a/algo-1-1", "job-b/algo-1-1"
    ]  # fmt: skip
    assert newest[0]["lastEventTimestamp"] == 4000 and newest[0]["firstEventTimestamp"] == 2000
    prefixed = logs.describe_log_streams(logGroupIdentifier=TRAINING, logStreamNamePrefix="job-a/")
    assert len(prefixed["logStreams"]) == 2
    pages = logs.get_paginator("describe_log_streams").paginate(
        logGroupName=TRAINING, PaginationConfig={"PageSize": 2}
    )
    assert [len(page["logStreams"]) for page in pages] == [2, 1]
    refused = _error(
        logs.describe_log_streams,
        logGroupName=TRAINING, orderBy="LastEventTime", logStreamNamePrefix="job-a",
    )  # fmt: skip
    assert refused["Error"]["Code"] == "InvalidParameterException"
    missing = _error(logs.describe_log_streams, logGroupName="/no/such/group")
    assert missing["Error"]["Code"] == "ResourceNotFoundException"


def test_get_log_events_tokens(server: RunningServer, logs: Any) -> None:
    stream = {"logGroupName": TRAINING, "logStreamName": "job-a/algo-1-1"}
    first = logs.get_log_events(**stream, startFromHead=True, limit=1)
    assert [e["message"] for e in first["events"]] == ["start a"]
    second = logs.get_log_events(**stream, nextToken=first["nextForwardToken"])
    assert [e["message"] for e in second["events"]] == ["ERROR disk full"]
    # Nothing new: the same forward token comes back, which is how a reader knows to wait.
    idle = logs.get_log_events(**stream, nextToken=second["nextForwardToken"])
    assert idle["events"] == [] and idle["nextForwardToken"] == second["nextForwardToken"]
    server.engine.metadata.append_log_events(TRAINING, "job-a/algo-1-1", [(5000, "late")])
    late = logs.get_log_events(**stream, nextToken=idle["nextForwardToken"])
    assert [e["message"] for e in late["events"]] == ["late"]
    # Without a token and not from the head: the newest events; backward goes to older ones.
    tail = logs.get_log_events(**stream, limit=1)
    assert [e["message"] for e in tail["events"]] == ["late"]
    back = logs.get_log_events(**stream, limit=1, nextToken=tail["nextBackwardToken"])
    assert [e["message"] for e in back["events"]] == ["ERROR disk full"]
    window = logs.get_log_events(**stream, startTime=2000, endTime=5000, startFromHead=True)
    assert [e["message"] for e in window["events"]] == ["ERROR disk full"]
    bad = _error(logs.get_log_events, **stream, nextToken="x/1")
    assert bad["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_filter_log_events_across_streams(logs: Any) -> None:
    def messages(**request: Any) -> list[str]:
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName=TRAINING, **request)
        return [e["message"] for page in pages for e in page["events"]]

    assert messages() == [
        "start a", "other job ERROR", "start b", "ERROR disk full", "error: minor"
    ]  # fmt: skip
    assert messages(logStreamNamePrefix="job-a/") == [
        "start a", "start b", "ERROR disk full", "error: minor"
    ]  # fmt: skip
    assert messages(logStreamNames=["job-a/algo-2-1", "job-b/algo-1-1"]) == [
        "other job ERROR", "start b", "error: minor"
    ]  # fmt: skip
    # Terms are case-sensitive, as in CloudWatch; a quoted phrase matches as a whole.
    assert messages(filterPattern="ERROR") == ["other job ERROR", "ERROR disk full"]
    assert messages(filterPattern='"disk full"') == ["ERROR disk full"]
    assert messages(filterPattern='"full disk"') == []
    assert messages(filterPattern="?minor ?other") == ["other job ERROR", "error: minor"]
    assert messages(filterPattern="ERROR -disk") == ["other job ERROR"]
    assert messages(startTime=1500, endTime=3000) == [
        "other job ERROR", "start b", "ERROR disk full"
    ]  # fmt: skip
    # Paging: one event a page, through the paginator's tokens, loses and repeats nothing.
    assert messages(PaginationConfig={"PageSize": 1}) == messages()
    assert messages(filterPattern="start", PaginationConfig={"PageSize": 1}) == [
        "start a", "start b"
    ]  # fmt: skip
    event = logs.filter_log_events(logGroupName=TRAINING, limit=1)["events"][0]
    assert event["logStreamName"] == "job-a/algo-1-1" and event["eventId"]
    json_pattern = _error(
        logs.filter_log_events, logGroupName=TRAINING, filterPattern="{ $.a = 1 }"
    )
    assert json_pattern["Error"]["Code"] == "InvalidParameterException"
    both = _error(
        logs.filter_log_events, logGroupName=TRAINING, logStreamNames=["a"], logStreamNamePrefix="a"
    )
    assert both["Error"]["Code"] == "InvalidParameterException"
    endpoint = logs.filter_log_events(
        logGroupIdentifier=f"arn:aws:logs:us-east-1:000000000000:log-group:{ENDPOINTS}/ep-1"
    )
    assert [e["message"] for e in endpoint["events"]] == ["serving"]
    transform = logs.filter_log_events(logGroupName=TRANSFORM, filterPattern="line")
    assert [e["message"] for e in transform["events"]] == ["transform line"]


def test_filter_patterns() -> None:
    pattern = parse('ERROR "disk full" ?a ?"b c" -x -"y z"')
    assert pattern.required == ("ERROR", "disk full")
    assert pattern.any_of == ("a", "b c") and pattern.none_of == ("x", "y z")
    assert pattern.matches("ERROR disk full at a") and not pattern.matches("ERROR disk full")
    assert not pattern.matches("ERROR disk full a x")
    assert parse('"say \\"hi\\""').required == ('say "hi"',)
    assert parse("").matches("anything") and parse(None).matches("")


@pytest.mark.slow
def test_a_training_jobs_lines_are_found_across_its_hosts(
    server: RunningServer, tmp_path: Path
) -> None:
    sagemaker, logs = server.client("sagemaker"), server.client("logs")
    image = make_image(
        tmp_path / "img", "import socket\nprint('epoch=1 loss=0.5 on', socket.gethostname())"
    )
    request = training_request("two-hosts", image)
    request["ResourceConfig"]["InstanceCount"] = 2
    sagemaker.create_training_job(**request)
    assert wait_for_job(sagemaker, "two-hosts")["TrainingJobStatus"] == "Completed"
    found = logs.filter_log_events(
        logGroupName=TRAINING, logStreamNamePrefix="two-hosts/", filterPattern='"loss=0.5"'
    )["events"]
    assert sorted(e["message"] for e in found) == [
        "epoch=1 loss=0.5 on algo-1", "epoch=1 loss=0.5 on algo-2"
    ]  # fmt: skip
    assert {e["logStreamName"].split("/")[1].rsplit("-", 1)[0] for e in found} == {
        "algo-1", "algo-2"
    }  # fmt: skip
