"""A real server with its metadata in PostgreSQL (DOCKYARD_DATABASE_URL=postgresql://...): a
training job through boto3 ends up as rows in PostgreSQL, not in the home's SQLite file, and
`kill -9` of the server process then a new server on the same database and home lose nothing:
the finished job is as it was, the one that was running ends with a reason. A second server on
the same database refuses to start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest

from dockyard.api.keys import face_key
from dockyard.client.local_server import start_background
from dockyard.settings import Settings
from tests.conftest import (
    EXAMPLES,
    RunningServer,
    channel,
    free_port,
    make_image,
    training_request,
    wait_for_job,
)
from tests.processes import gone, stop

TRAIN = """
import json, os, time
hyperparameters = json.load(open("/opt/ml/input/config/hyperparameters.json"))
print("files", len(os.listdir("/opt/ml/input/data/train")))
for epoch in range(3):
    print(f"epoch={epoch} loss={1.0 / (epoch + 1):.3f}")
open("/opt/ml/model/model.txt", "w").write("trained")
time.sleep(float(hyperparameters.get("sleep", 0)))
"""
IRIS = f"file://{EXAMPLES / 'data' / 'iris'}"
STEPS = ["Starting", "Downloading", "Training", "Uploading", "Completed"]


def _job(name: str, image: Path, **hyperparameters: str) -> dict[str, Any]:
    request = training_request(
        name, image, InputDataConfig=[channel("train", IRIS)], HyperParameters=hyperparameters
    )
    request["AlgorithmSpecification"]["MetricDefinitions"] = [
        {"Name": "loss", "Regex": r"loss=([0-9.]+)"}
    ]
    return request


def _rows(url: str, job: str) -> dict[str, Any]:
    """What PostgreSQL itself holds of the job."""
    with psycopg.connect(url) as db:
        status = db.execute(
            "SELECT status FROM resources WHERE kind = 'training-job' AND name = %s", (job,)
        ).fetchone()
        steps = db.execute(
            "SELECT status FROM status_transitions WHERE job_name = %s ORDER BY id", (job,)
        ).fetchall()
        lines = db.execute(
            "SELECT count(*) FROM log_events WHERE stream_name LIKE %s", (f"{job}/%",)
        ).fetchone()
        metrics = db.execute(
            "SELECT count(*) FROM metric_points WHERE job_name = %s", (job,)
        ).fetchone()
    return {
        "status": None if status is None else status[0],
        "steps": [step for (step,) in steps],
        "log_lines": lines[0] if lines else 0,
        "metric_points": metrics[0] if metrics else 0,
    }


@pytest.mark.slow
def test_a_job_through_boto3_is_kept_in_postgresql(
    clean_env: Path, postgres_url: str, tmp_path: Path
) -> None:
    settings = Settings(
        home=clean_env, port=free_port(), stop_grace_seconds=2.0, database_url=postgres_url
    )
    server = RunningServer(settings)
    try:
        sagemaker, logs = server.client("sagemaker"), server.client("logs")
        sagemaker.create_training_job(**_job("pg-job-1", make_image(tmp_path / "img", TRAIN)))
        described = wait_for_job(sagemaker, "pg-job-1")
        assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
        assert [t["Status"] for t in described["SecondaryStatusTransitions"]] == STEPS
        assert described["FinalMetricDataList"][0]["Value"] == pytest.approx(0.333)
        streams = logs.describe_log_streams(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="pg-job-1/"
        )["logStreams"]
        [stream] = [s["logStreamName"] for s in streams]
        assert stream.startswith("pg-job-1/algo-1-")
        events = logs.get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs",
            logStreamName=stream,
            startFromHead=True,
        )["events"]
        assert "epoch=2 loss=0.333" in [e["message"] for e in events]
        listed = sagemaker.list_training_jobs(NameContains="pg-job")["TrainingJobSummaries"]
        assert [j["TrainingJobName"] for j in listed] == ["pg-job-1"]
    finally:
        server.close()  # closes the engine and its store too
    rows = _rows(postgres_url, "pg-job-1")
    assert (rows["status"], rows["steps"]) == ("Completed", STEPS)
    assert rows["log_lines"] >= 4 and rows["metric_points"] == 3
    assert not (clean_env / "dockyard.db").exists()  # nothing went to the embedded default


def _clients(url: str, settings: Settings) -> Any:
    key = face_key(settings)
    return boto3.client(
        "sagemaker",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key.access_key_id,
        aws_secret_access_key=key.secret_access_key,
    )


@pytest.mark.slow
def test_kill_9_of_a_server_on_postgresql_loses_no_record(
    clean_env: Path, postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The background server reads its settings from the environment, as `dockyard server` does.
    monkeypatch.setenv("DOCKYARD_DATABASE_URL", postgres_url)
    settings = Settings(home=clean_env, port=free_port())
    assert settings.metadata_url == postgres_url
    image = make_image(tmp_path / "img", TRAIN)
    first = start_background(settings)
    try:
        sagemaker = _clients(first.url, settings)
        sagemaker.create_training_job(**_job("finished", image))
        before = wait_for_job(sagemaker, "finished")
        assert before["TrainingJobStatus"] == "Completed", before.get("FailureReason")
        sagemaker.create_training_job(**_job("running", image, sleep="600"))
        deadline = time.monotonic() + 120
        while sagemaker.describe_training_job(TrainingJobName="running")["SecondaryStatus"] != (
            "Training"
        ):
            assert time.monotonic() < deadline, "the second job did not start training"
            time.sleep(0.1)
        # A second server on the same database (another home) would fail the running job as
        # its own orphan: it refuses to start instead.
        other = subprocess.run(
            [sys.executable, "-m", "dockyard.api.server"],
            env={**os.environ, "DOCKYARD_HOME": str(tmp_path / "other-home"),
                 "DOCKYARD_PORT": str(free_port())},
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert other.returncode == 1, other.stderr[-2000:]
        assert "error: another dockyard server uses the metadata database" in other.stderr
        assert sagemaker.describe_training_job(TrainingJobName="running")["SecondaryStatus"] == (
            "Training"
        )
    finally:
        os.kill(first.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not gone(first.pid):
        assert time.monotonic() < deadline, "the killed server did not go"
        time.sleep(0.05)
    assert _rows(postgres_url, "running")["status"] == "InProgress"  # as the kill left it

    second = start_background(settings)
    assert second.pid != first.pid
    try:
        sagemaker = _clients(second.url, settings)
        after = sagemaker.describe_training_job(TrainingJobName="finished")
        for field in ("TrainingJobStatus", "SecondaryStatusTransitions", "CreationTime",
                      "TrainingStartTime", "TrainingEndTime", "FinalMetricDataList",
                      "ModelArtifacts", "HyperParameters"):  # fmt: skip
            assert after[field] == before[field], field
        running = sagemaker.describe_training_job(TrainingJobName="running")
        assert running["TrainingJobStatus"] == "Failed"
        assert "the dockyard server stopped while this job was running" in running["FailureReason"]
        names = [
            j["TrainingJobName"]
            for j in sagemaker.list_training_jobs(SortBy="Name")["TrainingJobSummaries"]
        ]
        assert names == ["finished", "running"]
    finally:
        stop(second.pid)
    assert _rows(postgres_url, "finished")["steps"] == STEPS
    assert _rows(postgres_url, "running")["status"] == "Failed"
    assert not (clean_env / "dockyard.db").exists()
