"""The real SageMaker Python SDK's TrainingJobAnalytics, in its own virtual environment, reads a
dockyard job's metric curve through the CloudWatch API (GetMetricStatistics, TrainingJobName,
Average) exactly as the job's stored points give it."""

from __future__ import annotations

import json
import textwrap
from collections import defaultdict
from pathlib import Path

import pytest

from dockyard.engine.metric_statistics import aligned_start
from tests.api.test_cloudwatch_api import STEPS, run_job
from tests.api.test_sagemaker_sdk import result_of, run_script, sdk_env, sdk_python
from tests.conftest import RunningServer

pytestmark = pytest.mark.slow
__all__ = ["sdk_python"]  # the SDK's environment, a fixture of the SDK's own tests

SCRIPT = """
import json
import sagemaker
from sagemaker.analytics import TrainingJobAnalytics

session = sagemaker.Session()
found = {}
for period in (None, 1):
    analytics = TrainingJobAnalytics(
        "sdk-curve", metric_names=["train:loss"], sagemaker_session=session, period=period
    )
    frame = analytics.dataframe()
    found[str(period)] = {
        "timestamp": [float(t) for t in frame["timestamp"]],
        "metric_name": list(frame["metric_name"]),
        "value": [float(v) for v in frame["value"]],
    }
print("RESULT " + json.dumps(found))
"""


def expected_curve(server: RunningServer, period: int) -> tuple[list[float], list[float]]:
    """What TrainingJobAnalytics should show: the Average of every host's points in each
    period from TrainingStartTime to a minute past TrainingEndTime (the window the SDK asks
    for), as seconds since the first period."""
    described = server.client("sagemaker").describe_training_job(TrainingJobName="sdk-curve")
    start = described["TrainingStartTime"].timestamp()
    end = described["TrainingEndTime"].timestamp() + 60
    t0 = aligned_start(start, period)
    groups: dict[float, list[float]] = defaultdict(list)
    points = server.engine.metadata.metric_series("sdk-curve", "train:loss")
    assert len(points) == 2 * STEPS
    for p in points:
        assert t0 <= p.timestamp < end  # every point is in the window the SDK reads
        groups[t0 + (p.timestamp - t0) // period * period].append(p.value)
    first = min(groups)
    ordered = sorted(groups)
    return [t - first for t in ordered], [sum(groups[t]) / len(groups[t]) for t in ordered]


def test_training_job_analytics_reads_the_jobs_curve(
    server: RunningServer, sdk_python: Path, tmp_path: Path
) -> None:
    run_job(server, tmp_path, "sdk-curve")
    script = tmp_path / "analytics.py"
    script.write_text(textwrap.dedent(SCRIPT))
    found = result_of(run_script(sdk_python, script, sdk_env(server, tmp_path)))
    for period, shown in (("None", 60), ("1", 1)):
        timestamps, averages = expected_curve(server, shown)
        frame = found[period]
        assert frame["metric_name"] == ["train:loss"] * len(timestamps)
        assert frame["timestamp"] == timestamps
        assert frame["value"] == pytest.approx(averages, rel=1e-12)
    # At one second, the curve has more than one point (the job prints for about a second).
    assert len(found["1"]["value"]) >= 2, json.dumps(found)
