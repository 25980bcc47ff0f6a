"""LogTail: the CloudWatch Logs reader every face uses, against a real server's log groups."""

from __future__ import annotations

import pytest

from dockyard.client import Client
from dockyard.client.logs import TRANSFORM_LOG_GROUP, LogTail, endpoint_log_group, source_of
from dockyard.settings import Settings
from tests.conftest import RunningServer

EPOCH = 1763790000


@pytest.fixture
def client(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.setenv("DOCKYARD_ENDPOINT_URL", server.url)
    return Client(Settings())


def test_a_log_line_is_marked_with_the_instance_that_wrote_it() -> None:
    assert source_of("AllTraffic/AllTraffic-2-1763790000") == "AllTraffic-2"
    assert source_of("AllTraffic/dockyard-1763790000") == "AllTraffic/dockyard"
    assert source_of("iris-1/algo-1-1763790000") == "algo-1"
    assert source_of("dockyard-1763790000") == "dockyard"  # a job's own, its prefix removed
    assert source_of("no-epoch-here") == "no-epoch-here"


def test_a_jobs_streams_are_read_forward_in_time_order(
    server: RunningServer, client: Client
) -> None:
    metadata = server.engine.metadata
    metadata.append_log_events(
        TRANSFORM_LOG_GROUP, f"job-1/algo-2-{EPOCH}", [(2000, "b"), (4000, "d")]
    )
    metadata.append_log_events(
        TRANSFORM_LOG_GROUP, f"job-1/algo-1-{EPOCH}", [(1000, "a"), (3000, "c")]
    )
    metadata.append_log_events(TRANSFORM_LOG_GROUP, f"job-1/dockyard-{EPOCH}", [(1500, "up")])
    metadata.append_log_events(TRANSFORM_LOG_GROUP, f"job-10/algo-1-{EPOCH}", [(1200, "other")])
    tail = LogTail(client, TRANSFORM_LOG_GROUP, "job-1")
    assert tail.poll() == [
        (1.0, "algo-1", "a"),
        (1.5, "dockyard", "up"),
        (2.0, "algo-2", "b"),
        (3.0, "algo-1", "c"),
        (4.0, "algo-2", "d"),
    ]
    assert tail.poll() == []
    metadata.append_log_events(TRANSFORM_LOG_GROUP, f"job-1/algo-2-{EPOCH}", [(5000, "e")])
    assert tail.poll() == [(5.0, "algo-2", "e")]


def test_every_stream_of_a_group_is_read_past_a_page_of_streams(
    server: RunningServer, client: Client
) -> None:
    group = endpoint_log_group("busy")
    for instance in range(1, 61):  # DescribeLogStreams pages 50 at a time
        server.engine.metadata.append_log_events(
            group, f"AllTraffic/AllTraffic-{instance}-{EPOCH}", [(instance * 1000, "up")]
        )
    lines = LogTail(client, group).poll()
    assert [source for _, source, _ in lines] == [f"AllTraffic-{i}" for i in range(1, 61)]


def test_a_group_with_no_line_yet_reads_as_empty(client: Client) -> None:
    assert LogTail(client, "/aws/sagemaker/NoSuchGroup").poll() == []
