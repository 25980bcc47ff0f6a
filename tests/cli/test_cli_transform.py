"""`dockyard transform` and `dockyard transforms` as a user runs them: real CLI processes against a
real server in this process, real sandboxes."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

from tests.cli.test_cli_endpoints import cli_env_for, one_error_line
from tests.cli.test_cli_train import dockyard
from tests.conftest import EXAMPLES, RunningServer

pytestmark = pytest.mark.slow

SLOW_SERVER = r"""
import http.server, signal, sys, time
class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        self.reply(200 if self.path == "/ping" else 404, b"")
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        time.sleep(0.5)
        self.reply(200, body)
    def log_message(self, *args):
        pass
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
http.server.ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
"""


def iris_batches(folder: Path) -> list[list[str]]:
    """The iris rows shuffled (so order matters) into two files of features only; returns each
    file's labels in order."""
    lines = (EXAMPLES / "data" / "iris" / "iris.csv").read_text().splitlines()[1:]
    random.Random(7).shuffle(lines)
    folder.mkdir(parents=True)
    labels = []
    for number, part in enumerate((lines[:75], lines[75:])):
        rows = [line.rsplit(",", 1) for line in part]
        (folder / f"part-{number}.csv").write_text("".join(f"{x}\n" for x, _ in rows))
        labels.append([label for _, label in rows])
    return labels


def predictions(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.strip()]


def agreement(got: list[str], expected: list[str]) -> float:
    assert len(got) == len(expected)
    return sum(a == b for a, b in zip(got, expected, strict=True)) / len(expected)


def test_r_model_transforms_local_files_in_order(server: RunningServer, tmp_path: Path) -> None:
    env = cli_env_for(server)
    trained = dockyard(
        env, "train", "--image", "examples/r-randomforest", "--input", "train=examples/data/iris",
        "--hp", "target=Species", "--output", "s3://demo/out", "--name", "iris-rf",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout + trained.stderr
    labels = iris_batches(tmp_path / "in")

    out = tmp_path / "out"
    result = dockyard(
        env, "transform", "--job", "iris-rf", "--input", str(tmp_path / "in"),
        "--output", str(out), "--content-type", "text/csv", "--accept", "text/csv",
        "--split-type", "Line", "--strategy", "MultiRecord", "--assemble-with", "Line",
        "--max-concurrent", "2", "--max-payload", "1", "--instance-count", "2",
        "--name", "iris-batch",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "InProgress" in result.stdout and "Completed" in result.stdout
    # A server named by DOCKYARD_ENDPOINT_URL may be elsewhere: the input folder went up through
    # the S3 API, and the output came back from the store into the local folder.
    assert f"output in {out} (downloaded from s3://sagemaker-us-east-1-000000000000/" in (
        result.stdout.replace("\n", "")
    )
    # The instances' log lines, each marked with its instance, come with the status.
    assert "[algo-1] serving /ping and /invocations" in result.stdout
    assert "[algo-2] serving /ping and /invocations" in result.stdout
    for number, expected in enumerate(labels):
        # A random forest mostly agrees with the labels it was trained on; in the wrong order
        # (rows shuffled) the agreement would be about a third.
        assert agreement(predictions(out / f"part-{number}.csv.out"), expected) > 0.9

    described = json.loads(dockyard(env, "transforms", "describe", "iris-batch").stdout)
    assert described["TransformJobStatus"] == "Completed"
    assert described["ModelName"] == "iris-batch"  # a model made from the job for this run
    assert described["BatchStrategy"] == "MultiRecord"
    assert described["MaxConcurrentTransforms"] == 2
    assert described["MaxPayloadInMB"] == 1
    assert described["TransformInput"]["SplitType"] == "Line"
    assert described["TransformOutput"]["AssembleWith"] == "Line"
    assert described["TransformResources"]["InstanceCount"] == 2
    source = described["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    assert source == "s3://sagemaker-us-east-1-000000000000/data/iris-batch/"
    listed = dockyard(env, "transforms", "list")
    assert "iris-batch" in listed.stdout and "Completed" in listed.stdout

    # The same model again, by name, from the object store to the object store.
    copied = dockyard(env, "s3", "cp", str(tmp_path / "in"), "s3://batch/in", "--recursive")
    assert copied.returncode == 0, copied.stderr
    again = dockyard(
        env, "transform", "--model", "iris-batch", "--input", "s3://batch/in/",
        "--output", "s3://batch/out", "--content-type", "text/csv", "--split-type", "Line",
        "--strategy", "SingleRecord", "--name", "iris-single",
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert "output in s3://batch/out" in again.stdout
    listing = dockyard(env, "s3", "ls", "s3://batch/out/")
    assert "part-0.csv.out" in listing.stdout and "part-1.csv.out" in listing.stdout
    back = tmp_path / "back"
    assert dockyard(env, "s3", "cp", "s3://batch/out", str(back), "--recursive").returncode == 0
    assert agreement(predictions(back / "part-1.csv.out"), labels[1]) > 0.9

    # A record the model refuses fails the job: exit 1 and the reason on one line.
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "short.csv").write_text("1,2\n")
    failed = dockyard(
        env, "transform", "--model", "iris-batch", "--input", str(bad), "--output",
        str(tmp_path / "bad-out"), "--content-type", "text/csv", "--name", "iris-bad",
    )  # fmt: skip
    one_error_line(failed, "transform job iris-bad failed: ")
    assert "each row needs 4 values" in failed.stderr
    status = json.loads(dockyard(env, "transforms", "describe", "iris-bad").stdout)
    assert status["TransformJobStatus"] == "Failed"
    failed_list = dockyard(env, "transforms", "list", "--status", "Failed", "--json")
    names = [s["TransformJobName"] for s in json.loads(failed_list.stdout)["TransformJobSummaries"]]
    assert names == ["iris-bad"]


def test_detach_then_stop(server: RunningServer, tmp_path: Path) -> None:
    env = cli_env_for(server)
    image = tmp_path / "slow"
    image.mkdir()
    (image / "server.py").write_text(SLOW_SERVER)
    (image / "Dockerfile").write_text(
        "FROM python:3.11-slim\n"
        "COPY server.py /srv/server.py\n"
        'ENTRYPOINT ["python3", "/srv/server.py"]\n'
    )
    assert dockyard(env, "models", "create", "slow", "--image", str(image)).returncode == 0
    data = tmp_path / "in"
    data.mkdir()
    (data / "many.txt").write_text("".join(f"{i}\n" for i in range(200)))
    # Detached, the CLI cannot fetch the output later: it goes to the store.
    made = dockyard(env, "s3", "mb", "s3://batch")
    assert made.returncode == 0 and made.stdout == "make_bucket: batch\n", made.stderr
    detached = dockyard(
        env, "transform", "--model", "slow", "--input", str(data), "--output",
        "s3://batch/slow-out", "--split-type", "Line", "--strategy", "SingleRecord",
        "--name", "slow-batch", "--detach",
    )  # fmt: skip
    assert detached.returncode == 0, detached.stdout + detached.stderr
    assert "Transform job slow-batch created" in detached.stdout
    assert "Completed" not in detached.stdout

    stopped = dockyard(env, "transforms", "stop", "slow-batch")
    assert stopped.returncode == 0 and "Stopping slow-batch" in stopped.stdout, stopped.stderr
    deadline = time.monotonic() + 60
    while True:
        described = json.loads(dockyard(env, "transforms", "describe", "slow-batch").stdout)
        if described["TransformJobStatus"] in ("Stopped", "Completed", "Failed"):
            break
        assert time.monotonic() < deadline, described
        time.sleep(0.2)
    assert described["TransformJobStatus"] == "Stopped"


def test_transform_mistakes_give_one_clear_line(server: RunningServer, tmp_path: Path) -> None:
    env = cli_env_for(server)
    neither = dockyard(env, "transform", "--input", str(tmp_path), "--output", str(tmp_path))
    assert neither.returncode == 2 and "give --model MODEL or --job JOB" in neither.stderr
    no_model = dockyard(
        env, "transform", "--model", "no-such-model", "--input", str(tmp_path), "--output",
        "s3://out/x",
    )  # fmt: skip
    one_error_line(no_model, "no-such-model")
    no_job = dockyard(
        env, "transform", "--job", "no-such-job", "--input", str(tmp_path), "--output", "s3://o/x"
    )
    one_error_line(no_job, "training job no-such-job not found")
    missing = dockyard(env, "transforms", "describe", "no-such-transform")
    one_error_line(missing, "no-such-transform")
    assert json.loads(dockyard(env, "models", "list", "--json").stdout)["Models"] == []
