"""`dockyard train` and friends as a user runs them: real CLI processes, a background server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, free_port, make_image, wait_for_port

DOCKYARD = [sys.executable, "-m", "dockyard.cli.main"]
pytestmark = pytest.mark.slow


@pytest.fixture
def cli_env(clean_env: Path) -> Iterator[dict[str, str]]:
    env = {
        **os.environ,
        "DOCKYARD_HOME": str(clean_env),
        "DOCKYARD_PORT": str(free_port()),
        "DOCKYARD_STOP_GRACE_SECONDS": "1",
    }
    yield env
    subprocess.run(
        [*DOCKYARD, "server", "stop"], env=env, check=False, capture_output=True, timeout=60
    )


def dockyard(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DOCKYARD, *args],
        env=env,
        cwd=cwd or EXAMPLES.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_r_example_trains_and_its_model_lands_in_the_store(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    result = dockyard(
        cli_env,
        "train",
        "--image",
        "examples/r-randomforest",
        "--input",
        "train=examples/data/iris",
        "--hp",
        "target=Species",
        "--output",
        "s3://demo/out",
        "--name",
        "iris-1",
        "--metric",
        r"train:accuracy=train:accuracy=([0-9.]+)",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Training" in result.stdout and "Completed" in result.stdout
    described = json.loads(dockyard(cli_env, "jobs", "describe", "iris-1").stdout)
    assert described["TrainingJobStatus"] == "Completed"
    assert (
        described["ModelArtifacts"]["S3ModelArtifacts"]
        == "s3://demo/out/iris-1/output/model.tar.gz"
    )
    assert isinstance(described["CreationTime"], float)
    metric = {m["MetricName"]: m["Value"] for m in described["FinalMetricDataList"]}
    assert 0.8 < metric["train:accuracy"] <= 1.0

    listing = dockyard(cli_env, "s3", "ls", "s3://demo/out/iris-1/output/")
    assert "model.tar.gz" in listing.stdout and "output.tar.gz" in listing.stdout
    copied = dockyard(
        cli_env, "s3", "cp", "s3://demo/out/iris-1/output/model.tar.gz", str(tmp_path)
    )
    assert copied.returncode == 0, copied.stderr
    with tarfile.open(tmp_path / "model.tar.gz") as archive:
        assert "model.rds" in archive.getnames()

    logs = dockyard(cli_env, "jobs", "logs", "iris-1")
    assert "train:accuracy=" in logs.stdout
    jobs = dockyard(cli_env, "jobs", "list")
    assert "iris-1" in jobs.stdout and "Completed" in jobs.stdout

    # The same command with a target the data doesn't have: the R program writes
    # /opt/ml/output/failure and exits 1, and that text is the FailureReason.
    failed = dockyard(
        cli_env,
        "train",
        "--image",
        "examples/r-randomforest",
        "--input",
        "train=examples/data/iris",
        "--hp",
        "target=NoSuchColumn",
        "--output",
        "s3://demo/out",
        "--name",
        "iris-2",
    )
    assert failed.returncode == 1
    reason = json.loads(dockyard(cli_env, "jobs", "describe", "iris-2").stdout)["FailureReason"]
    assert "NoSuchColumn" in reason
    assert "NoSuchColumn" in failed.stdout


def test_max_run_stops_a_program_that_ignores_sigterm(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    image = make_image(
        tmp_path / "stubborn",
        "trap '' TERM\necho ignoring TERM\nwhile :; do sleep 0.1; done\n",
        language="sh",
    )
    result = dockyard(
        cli_env, "train", "--image", str(image), "--max-run", "1", "--name", "stubborn"
    )
    assert result.returncode == 2, result.stdout + result.stderr
    described = json.loads(dockyard(cli_env, "jobs", "describe", "stubborn").stdout)
    assert described["TrainingJobStatus"] == "Stopped"
    assert described["SecondaryStatus"] == "MaxRuntimeExceeded"


def test_bad_input_gives_one_clear_line(cli_env: dict[str, str], tmp_path: Path) -> None:
    empty = tmp_path / "no-dockerfile"
    empty.mkdir()
    cases = [
        (["--image", "examples/r-randomforest", "--name", "bad_name"], "regular expression"),
        (["--image", str(empty)], "has no Dockerfile"),
        (
            ["--image", "examples/r-randomforest", "--input", f"train={tmp_path / 'missing'}"],
            "does not exist",
        ),
        (
            ["--image", "examples/r-randomforest", "--instance-type", "ml.x9.huge"],
            "Member must satisfy enum value set",
        ),
        (
            [
                "--image",
                "examples/r-randomforest",
                *[arg for i in range(101) for arg in ("--hp", f"k{i}=v")],
            ],
            "100",
        ),
    ]
    for args, expected in cases:
        result = dockyard(cli_env, "train", *args)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert expected in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    listed = json.loads(dockyard(cli_env, "jobs", "list", "--json").stdout)
    assert listed["TrainingJobSummaries"] == []


def test_server_start_status_stop(cli_env: dict[str, str]) -> None:
    started = dockyard(cli_env, "server", "start")
    assert started.returncode == 0 and "running at http://127.0.0.1:" in started.stdout
    assert dockyard(cli_env, "server", "status").returncode == 0
    assert "stopped" in dockyard(cli_env, "server", "stop").stdout
    assert dockyard(cli_env, "server", "status").returncode == 1


def test_detach_then_follow_the_log_of_two_hosts(cli_env: dict[str, str]) -> None:
    submitted = dockyard(
        cli_env, "train", "--image", "examples/python-byoc", "--input", "train=examples/data/iris",
        "--hp", "epochs=4", "--hp", "sleep_per_epoch=0.3", "--instance-count", "2",
        "--name", "py-2", "--detach",
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    assert "created" in submitted.stdout and "epoch=" not in submitted.stdout
    followed = dockyard(cli_env, "jobs", "logs", "py-2", "--follow")
    assert followed.returncode == 0, followed.stderr
    # Lines of both hosts, each marked with its host, through to the end of training.
    assert '[algo-1] current_host=algo-1 hosts=["algo-1", "algo-2"]' in followed.stdout
    assert '[algo-2] current_host=algo-2 hosts=["algo-1", "algo-2"]' in followed.stdout
    assert "[algo-2] epoch=4" in followed.stdout
    described = json.loads(dockyard(cli_env, "jobs", "describe", "py-2").stdout)
    assert described["TrainingJobStatus"] == "Completed"


def test_a_model_from_a_training_job(cli_env: dict[str, str]) -> None:
    trained = dockyard(
        cli_env, "train", "--image", "examples/python-byoc", "--input", "train=examples/data/iris",
        "--output", "s3://demo/out", "--name", "for-model",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    created = dockyard(cli_env, "models", "create", "iris-model", "--job", "for-model")
    assert created.returncode == 0, created.stderr
    described = json.loads(dockyard(cli_env, "models", "describe", "iris-model").stdout)
    container = described["PrimaryContainer"]
    assert container["ModelDataUrl"] == "s3://demo/out/for-model/output/model.tar.gz"
    assert container["Image"].endswith("examples/python-byoc")
    assert "iris-model" in dockyard(cli_env, "models", "list").stdout
    assert dockyard(cli_env, "models", "delete", "iris-model").returncode == 0
    gone = dockyard(cli_env, "models", "describe", "iris-model")
    assert gone.returncode == 1 and "Could not find model" in gone.stderr


def test_foreground_server_and_s3_commands(cli_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    server = subprocess.Popen(
        [*DOCKYARD, "server", "--port", str(port)], env=cli_env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port)
        remote = {**cli_env, "DOCKYARD_ENDPOINT_URL": f"http://127.0.0.1:{port}"}
        listed = json.loads(dockyard(remote, "jobs", "list", "--json").stdout)
        assert listed["TrainingJobSummaries"] == []
    finally:
        server.terminate()
        # uvicorn shuts down gracefully, then re-raises the signal so the exit status tells.
        assert server.wait(timeout=30) in (0, -signal.SIGTERM)
    folder = tmp_path / "data"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.csv").write_text("1\n")
    (folder / "nested" / "b.csv").write_text("2\n")
    assert (
        dockyard(cli_env, "s3", "cp", str(folder), "s3://copies/set", "--recursive").returncode == 0
    )
    assert "s3://copies/" in dockyard(cli_env, "s3", "ls").stdout
    listing = dockyard(cli_env, "s3", "ls", "s3://copies/set/")
    assert "a.csv" in listing.stdout and "PRE" in listing.stdout and "nested/" in listing.stdout
    back = tmp_path / "back"
    assert (
        dockyard(cli_env, "s3", "cp", "s3://copies/set", str(back), "--recursive").returncode == 0
    )
    assert (back / "nested" / "b.csv").read_text() == "2\n"


def test_follow_marks_every_line_of_a_two_host_job_with_its_host(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """A poll may bring lines of one host only (here algo-2's, a second after algo-1 ended):
    they are marked with their host all the same."""
    image = make_image(
        tmp_path / "img",
        'echo "hello from $(hostname)"\n'
        'if [ "$(hostname)" = algo-2 ]; then sleep 1.5; echo "late line"; fi\n',
        language="sh",
    )
    submitted = dockyard(
        cli_env, "train", "--image", str(image), "--instance-count", "2", "--name", "marks",
        "--detach",
    )  # fmt: skip
    assert submitted.returncode == 0, submitted.stderr
    followed = dockyard(cli_env, "jobs", "logs", "marks", "--follow")
    assert followed.returncode == 0, followed.stderr
    assert "[algo-1] hello from algo-1" in followed.stdout
    assert "[algo-2] late line" in followed.stdout, followed.stdout
