"""Finished jobs' folders are bounded: removed after the retention period by the server itself,
or at once with `dockyard jobs prune`; a running job's folder is never touched."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from dockyard.client import Client
from dockyard.settings import Settings
from tests.conftest import RunningServer, free_port, make_image, training_request, wait_for_job


def _run(server: RunningServer, tmp_path: Path, name: str, program: str = "pass") -> Path:
    sagemaker = server.client("sagemaker")
    sagemaker.create_training_job(**training_request(name, make_image(tmp_path / name, program)))
    return server.settings.jobs_dir / name


@pytest.fixture
def no_retention_server(clean_env: Path) -> Iterator[RunningServer]:
    settings = Settings(home=clean_env, port=free_port(), job_folder_retention_hours=0)
    running = RunningServer(settings)
    try:
        yield running
    finally:
        running.close()


def test_the_server_removes_folders_past_the_retention(
    no_retention_server: RunningServer, tmp_path: Path
) -> None:
    folder = _run(no_retention_server, tmp_path, "short-lived")
    described = wait_for_job(no_retention_server.client("sagemaker"), "short-lived")
    assert described["TrainingJobStatus"] == "Completed"
    deadline = time.monotonic() + 15
    while folder.exists():
        assert time.monotonic() < deadline, "the folder outlived its retention"
        time.sleep(0.1)
    # The record, the log and the artifacts stay.
    sagemaker = no_retention_server.client("sagemaker")
    assert sagemaker.describe_training_job(TrainingJobName="short-lived")["ModelArtifacts"]


def test_prune_removes_finished_folders_now_and_never_a_running_one(
    server: RunningServer, tmp_path: Path
) -> None:
    finished = _run(server, tmp_path, "finished")
    assert wait_for_job(server.client("sagemaker"), "finished")["TrainingJobStatus"] == "Completed"
    assert (finished / "hosts" / "algo-1.volume").is_file()  # kept for the retention period
    running = _run(server, tmp_path, "running", "import time; time.sleep(60)")
    deadline = time.monotonic() + 30
    while not (running / "hosts" / "algo-1").is_mount():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    client = Client(Settings(home=server.settings.home, endpoint_url=server.url))
    assert client.dockyard("PruneJobFolders", {"OlderThanHours": 1}) == {
        "PrunedJobs": [],
        "FreedBytes": 0,
    }  # it ended moments ago
    for bad in ({"OlderThanHours": -1}, {"OlderThanHours": "soon"}, {"OlderThanHours": 1e300}):
        with pytest.raises(ClientError, match="ValidationException"):
            client.dockyard("PruneJobFolders", bad)
    env = {**os.environ, "DOCKYARD_ENDPOINT_URL": server.url}
    pruned = subprocess.run(
        [sys.executable, "-m", "dockyard.cli.main", "jobs", "prune"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert pruned.returncode == 0, pruned.stderr
    assert pruned.stdout.splitlines()[0] == "finished"
    assert pruned.stdout.splitlines()[1].startswith("Removed 1 job folder, ")
    assert not finished.exists()
    assert (running / "hosts" / "algo-1").is_mount()
    server.client("sagemaker").stop_training_job(TrainingJobName="running")
