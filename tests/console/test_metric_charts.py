"""The charts of a training job's page in a real Chromium: every host's series of a metric, the
same points GetMetricData answers boto3, and FinalMetricDataList's last value as the last point."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_image, training_request, wait_for_job
from tests.console.conftest import Console

STEPS = 20
# Each host prints loss for 20 steps, a little over a second apart, so that each point has its
# own second: the page asks for the raw points (period 1 s), and a second holding two points
# would answer their average. The hosts' values differ, so their series can be told apart.
PRINTS_LOSS = f"""
import json, os, time
host = json.load(open("/opt/ml/input/config/resourceconfig.json"))["current_host"]
offset = int(host.split("-")[1]) / 100
for step in range({STEPS}):
    print(f"step={{step}} loss={{1 / (step + 1) + offset:.4f}}", flush=True)
    time.sleep(1.1)
"""


def expected_losses(host: str) -> list[float]:
    offset = int(host.split("-")[1]) / 100
    return [round(1 / (step + 1) + offset, 4) for step in range(STEPS)]


def chart(page: Any, name: str) -> dict[str, list[tuple[float, float]]]:
    """The points the page's chart of `name` draws, per series label (host)."""
    drawn = page.evaluate(
        """(name) => {
            const plot = window.dockyardCharts[name];
            return { labels: plot.series.slice(1).map((s) => s.label), data: plot.data };
        }""",
        name,
    )
    times = drawn["data"][0]
    return {
        label: [(t, v) for t, v in zip(times, column, strict=True) if v is not None]
        for label, column in zip(drawn["labels"], drawn["data"][1:], strict=True)
    }


@pytest.mark.slow
def test_the_job_page_charts_every_hosts_metric_as_cloudwatch_has_it(
    console: Console, tmp_path: Path
) -> None:
    server = console.server
    sagemaker = server.client("sagemaker")
    request = training_request("two-hosts", make_image(tmp_path / "img", PRINTS_LOSS))
    request["ResourceConfig"]["InstanceCount"] = 2
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "loss", "Regex": r"loss=([0-9.]+)"}
    ]
    sagemaker.create_training_job(**request)

    page = console.page
    page.goto(console.url("/console/training-jobs/two-hosts"))
    # While it runs the chart fills in: points arrive without a reload.
    page.wait_for_function(
        "() => (window.dockyardCharts?.loss?.data[0].length ?? 0) >= 3", timeout=90_000
    )
    assert sagemaker.describe_training_job(TrainingJobName="two-hosts")["TrainingJobStatus"] == (
        "InProgress"
    )
    described = wait_for_job(sagemaker, "two-hosts", deadline_seconds=180)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    page.locator(".status-line [data-status='Completed']").wait_for()
    page.wait_for_function(
        f"""() => {{
            const plot = window.dockyardCharts?.loss;
            return plot && plot.series.length === 3
                && plot.data.slice(1).every((c) => c.filter((v) => v !== null).length === {STEPS});
        }}""",
        timeout=30_000,
    )
    drawn = chart(page, "loss")
    assert sorted(drawn) == ["algo-1", "algo-2"]
    for host, points in drawn.items():
        assert [v for _, v in points] == pytest.approx(expected_losses(host)), host

    # The same points as GetMetricData answers boto3, over the window the page asks for.
    cloudwatch = server.client("cloudwatch")
    start = int(described["CreationTime"].timestamp() - 60)
    end = int(described["TrainingEndTime"].timestamp() + 60) + 1
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[
            {
                "Id": f"h{i}",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "/aws/sagemaker/TrainingJobs",
                        "MetricName": "loss",
                        "Dimensions": [{"Name": "Host", "Value": f"two-hosts/{host}"}],
                    },
                    "Period": 1,
                    "Stat": "Average",
                },
            }
            for i, host in enumerate(["algo-1", "algo-2"], start=1)
        ],
        StartTime=start,
        EndTime=end,
        ScanBy="TimestampAscending",
    )
    by_id = {r["Id"]: r for r in answer["MetricDataResults"]}
    for i, host in enumerate(["algo-1", "algo-2"], start=1):
        series = by_id[f"h{i}"]
        assert [t.timestamp() for t in series["Timestamps"]] == pytest.approx(
            [t for t, _ in drawn[host]]
        ), host
        assert series["Values"] == pytest.approx([v for _, v in drawn[host]]), host

    # FinalMetricDataList's value is the last point of the host that printed last.
    (final,) = described["FinalMetricDataList"]
    assert final["MetricName"] == "loss"
    last_of_each = [points[-1] for points in drawn.values()]
    latest = max(t for t, _ in last_of_each)
    # (Both hosts may print their last step within one second: either is then the last.)
    assert any(final["Value"] == pytest.approx(v) for t, v in last_of_each if t == latest)
