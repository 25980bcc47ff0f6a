"""The console's gateway to CloudWatch: `GraniteServiceVersion20100801.<Operation>` answers
what the CloudWatch JSON protocol answers, with the session in place of SigV4."""

from __future__ import annotations

import time
from pathlib import Path

from tests.api.console_client import signed_in
from tests.conftest import RunningServer, make_image, training_request, wait_for_job

TARGET = "GraniteServiceVersion20100801"


def test_the_gateway_answers_cloudwatch_operations(server: RunningServer, tmp_path: Path) -> None:
    sagemaker = server.client("sagemaker")
    image = make_image(tmp_path / "img", "print('loss=0.5')")
    request = training_request("one-point", image)
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "loss", "Regex": "loss=(\\S+)"}
    ]
    sagemaker.create_training_job(**request)
    assert wait_for_job(sagemaker, "one-point")["TrainingJobStatus"] == "Completed"
    browser = signed_in(server)

    listed = browser.call(f"{TARGET}.ListMetrics", {"Namespace": "/aws/sagemaker/TrainingJobs"})
    assert listed.status_code == 200, listed.text
    assert listed.headers["content-type"].startswith("application/x-amz-json-1.0")
    hosts = [
        m["Dimensions"]
        for m in listed.json()["Metrics"]
        if m["MetricName"] == "loss" and m["Dimensions"][0]["Name"] == "Host"
    ]
    assert hosts == [[{"Name": "Host", "Value": "one-point/algo-1"}]]

    now = time.time()
    data = browser.call(
        f"{TARGET}.GetMetricData",
        {
            "MetricDataQueries": [
                {
                    "Id": "loss",
                    "MetricStat": {
                        "Metric": {
                            "Namespace": "/aws/sagemaker/TrainingJobs",
                            "MetricName": "loss",
                            "Dimensions": hosts[0],
                        },
                        "Period": 1,
                        "Stat": "Average",
                    },
                }
            ],
            "StartTime": int(now - 600),
            "EndTime": int(now + 60),
        },
    )
    assert data.status_code == 200, data.text
    (result,) = data.json()["MetricDataResults"]
    assert result["Values"] == [0.5]
    assert isinstance(result["Timestamps"][0], int | float)

    # CloudWatch's own refusals come back in its JSON form; without the CSRF token, nothing runs.
    unknown = browser.call(f"{TARGET}.PutMetricData", {})
    assert unknown.status_code == 400
    assert "UnknownOperation" in unknown.json()["__type"]
    forged = browser.call(f"{TARGET}.ListMetrics", {}, **{"X-CSRF-Token": "forged"})
    assert forged.status_code == 403
