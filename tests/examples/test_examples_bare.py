"""The example images' programs, run bare (no dockyard) in a bubblewrap sandbox with a fake /opt/ml.

Each run sees the host read-only, a private /tmp, a tmpfs /opt holding only the test's /opt/ml and
the example folder at /opt/program, and the environment its Dockerfile sets; the argument is `train`
or `serve`, as SageMaker (and dockyard) start them.
"""

from __future__ import annotations

import errno
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
IRIS = EXAMPLES / "data" / "iris" / "iris.csv"
R_EXAMPLE = EXAMPLES / "r-randomforest"
PY_EXAMPLE = EXAMPLES / "python-byoc"

# The Dockerfiles' ENV lines and commands, as the process runtime would apply them.
R_ENV = {"PATH": f"/opt/program:{os.environ.get('PATH', '/usr/bin:/bin')}"}
# The image's own command, on a container's PATH: never this test's interpreter, which may live
# under /tmp (hidden by the sandbox's private /tmp) on a CI machine.
PY_ENV = {
    "PYTHONUNBUFFERED": "TRUE",
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
}
PY_ARGV = ["python3", "/opt/program/program.py"]

# One typical flower of each species, as the feature columns in training order.
SAMPLES = {
    "setosa": "5.1,3.5,1.4,0.2",
    "versicolor": "5.7,2.8,4.1,1.3",
    "virginica": "6.3,3.3,6.0,2.5",
}

R_ACCURACY = re.compile(r"^train:accuracy=([0-9.]+);$", re.MULTILINE)
R_OOB_ERROR = re.compile(r"^train:oob_error=([0-9.]+);$", re.MULTILINE)
PY_EPOCH = re.compile(r"^epoch=(\d+) train_loss=([0-9.]+)$", re.MULTILINE)
PY_ACCURACY = re.compile(r"^accuracy=([0-9.]+)$", re.MULTILINE)


@pytest.fixture(scope="module", autouse=True)
def tools() -> None:
    if shutil.which("bwrap") is None:
        pytest.fail("bubblewrap is needed to sandbox the examples: apt-get install -y bubblewrap")


@pytest.fixture(scope="module")
def rscript() -> None:
    probe = subprocess.run(
        ["Rscript", "-e", "library(randomForest); library(plumber); library(jsonlite)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        pytest.fail(
            "the R example needs R with randomForest, plumber and jsonlite: apt-get install -y "
            "--no-install-recommends r-base-core r-cran-randomforest r-cran-plumber "
            f"r-cran-jsonlite\n{probe.stderr}"
        )


def make_ml(
    root: Path,
    hyperparameters: dict[str, str],
    channels: dict[str, str] | None = None,
) -> Path:
    """A fresh /opt/ml tree as SageMaker lays it out; File-mode channels get iris.csv."""
    channels = channels if channels is not None else {"train": "File"}
    ml = root / "ml"
    config = ml / "input" / "config"
    config.mkdir(parents=True)
    (ml / "model").mkdir()
    (ml / "output" / "data").mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
    inputdataconfig = {
        name: {
            "ContentType": "text/csv",
            "TrainingInputMode": mode,
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        }
        for name, mode in channels.items()
    }
    (config / "inputdataconfig.json").write_text(json.dumps(inputdataconfig))
    resourceconfig = {
        "current_host": "algo-1",
        "hosts": ["algo-1"],
        "current_group_name": "homogeneousCluster",
        "current_instance_type": "ml.m5.large",
        "network_interface_name": "eth0",
    }
    (config / "resourceconfig.json").write_text(json.dumps(resourceconfig))
    data = ml / "input" / "data"
    data.mkdir(parents=True)
    for name, mode in channels.items():
        if mode == "File":
            (data / name).mkdir()
            shutil.copy(IRIS, data / name / "iris.csv")
    return ml


def sandboxed(ml: Path, program: Path, argv: list[str], env: dict[str, str]) -> list[str]:
    command = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
    command += ["--tmpfs", "/tmp", "--tmpfs", "/opt", "--bind", str(ml), "/opt/ml"]
    command += ["--ro-bind", str(program), "/opt/program", "--chdir", "/opt/program"]
    command += ["--die-with-parent"]
    for name, value in env.items():
        command += ["--setenv", name, value]
    return [*command, "--", *argv]


def run(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def request(
    port: int, method: str, path: str, body: str = "", content_type: str | None = None
) -> tuple[int, str, str]:
    """(status, content type, body text) of one HTTP request to 127.0.0.1:port."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Content-Type": content_type} if content_type else {}
        connection.request(method, path, body=body.encode(), headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read().decode()
    finally:
        connection.close()


@contextmanager
def serving(command: list[str], port: int, log: Path, deadline: float = 30.0) -> Iterator[None]:
    """Start a server, wait until GET /ping answers 200, and stop it afterwards."""
    with log.open("w") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        give_up = time.monotonic() + deadline
        while True:
            if server.poll() is not None:
                pytest.fail(f"serve exited with {server.returncode}:\n{log.read_text()}")
            try:
                if request(port, "GET", "/ping")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > give_up:
                pytest.fail(f"/ping did not answer 200 within {deadline} s:\n{log.read_text()}")
            time.sleep(0.05)
        yield
    finally:
        server.terminate()  # --die-with-parent takes the sandboxed server down with bwrap
        server.wait(timeout=10)


def sandboxed_child(sandbox: subprocess.Popen[str], deadline: float = 10.0) -> int:
    """The pid of the program bwrap started: bwrap does not pass signals on to it."""
    give_up = time.monotonic() + deadline
    while time.monotonic() < give_up:
        children = Path(f"/proc/{sandbox.pid}/task/{sandbox.pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.01)
    raise TimeoutError("bwrap started no program")


# ---------------------------------------------------------------------------------------------
# R randomForest


@pytest.fixture(scope="module")
def r_trained(
    rscript: None, tmp_path_factory: pytest.TempPathFactory
) -> tuple[subprocess.CompletedProcess[str], Path]:
    ml = make_ml(tmp_path_factory.mktemp("r-train"), {"target": "Species", "ntree": "50"})
    return run(sandboxed(ml, R_EXAMPLE, ["train"], R_ENV)), ml


def test_r_program_files_are_executable() -> None:
    for name in ("train", "serve"):
        assert os.access(R_EXAMPLE / name, os.X_OK), f"chmod +x examples/r-randomforest/{name}"


def test_r_train_reports_oob_accuracy_and_saves_the_model(
    r_trained: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, ml = r_trained
    assert result.returncode == 0, result.stdout + result.stderr
    accuracy = R_ACCURACY.search(result.stdout)
    oob_error = R_OOB_ERROR.search(result.stdout)
    assert accuracy and oob_error, result.stdout
    assert float(accuracy.group(1)) > 0.8
    assert float(accuracy.group(1)) + float(oob_error.group(1)) == pytest.approx(1.0, abs=1e-3)
    assert (ml / "model" / "model.rds").stat().st_size > 0
    assert "ntree: 50" in (ml / "output" / "data" / "summary.txt").read_text()
    assert not (ml / "output" / "failure").exists()


def test_r_train_names_a_missing_target_column_in_the_failure_file(
    rscript: None, tmp_path: Path
) -> None:
    ml = make_ml(tmp_path, {"target": "colour"})

    result = run(sandboxed(ml, R_EXAMPLE, ["train"], R_ENV))

    assert result.returncode == 1
    failure = (ml / "output" / "failure").read_text()
    assert "'colour'" in failure
    assert "colour" in result.stderr
    assert not (ml / "model" / "model.rds").exists()


@pytest.mark.slow
def test_r_serve_predicts_the_species_of_csv_rows(
    r_trained: tuple[subprocess.CompletedProcess[str], Path], tmp_path: Path
) -> None:
    _, ml = r_trained
    port = free_port()
    env = {**R_ENV, "SAGEMAKER_BIND_TO_PORT": str(port)}

    with serving(sandboxed(ml, R_EXAMPLE, ["serve"], env), port, tmp_path / "serve.log"):
        body = "".join(f"{row}\n" for row in SAMPLES.values())
        status, content_type, text = request(port, "POST", "/invocations", body, "text/csv")
        assert (status, content_type) == (200, "text/csv"), text
        assert text.split() == list(SAMPLES)

        status, _, text = request(port, "POST", "/invocations", '{"x": 1}', "application/json")
        assert status == 415
        assert "text/csv" in text

        status, _, text = request(port, "POST", "/invocations", "5.1,3.5\n", "text/csv")
        assert status == 400
        assert "4 values" in text


# ---------------------------------------------------------------------------------------------
# Python, standard library only


def test_python_train_file_mode(tmp_path: Path) -> None:
    ml = make_ml(tmp_path, {"target": "Species", "epochs": "3"})

    result = run(sandboxed(ml, PY_EXAMPLE, [*PY_ARGV, "train"], PY_ENV))

    assert result.returncode == 0, result.stdout + result.stderr
    assert 'current_host=algo-1 hosts=["algo-1"]' in result.stdout
    epochs = PY_EPOCH.findall(result.stdout)
    assert [int(epoch) for epoch, _ in epochs] == [1, 2, 3]
    losses = [float(loss) for _, loss in epochs]
    assert losses == sorted(losses, reverse=True)
    accuracy = PY_ACCURACY.search(result.stdout)
    assert accuracy and float(accuracy.group(1)) > 0.8
    model = json.loads((ml / "model" / "model.json").read_text())
    assert sorted(model["centroids"]) == sorted(SAMPLES)
    assert model["features"] == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    metrics = json.loads((ml / "output" / "data" / "metrics.json").read_text())
    assert metrics["epochs_completed"] == 3
    assert metrics["accuracy"] == pytest.approx(float(accuracy.group(1)), abs=1e-4)


def test_python_train_scores_a_validation_channel(tmp_path: Path) -> None:
    ml = make_ml(tmp_path, {}, {"train": "File", "validation": "File"})

    result = run(sandboxed(ml, PY_EXAMPLE, [*PY_ARGV, "train"], PY_ENV))

    assert result.returncode == 0, result.stdout + result.stderr
    assert len(PY_EPOCH.findall(result.stdout)) == 5  # the default
    validation = re.search(r"^validation_accuracy=([0-9.]+)$", result.stdout, re.MULTILINE)
    assert validation and float(validation.group(1)) > 0.8, result.stdout


def feed_fifo(fifo: Path, text: str, deadline: float = 30.0) -> None:
    """Write text into a FIFO once a reader opens it, as the platform does in Pipe mode."""
    give_up = time.monotonic() + deadline
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as exc:  # ENXIO: nobody is reading yet
            if exc.errno != errno.ENXIO or time.monotonic() > give_up:
                return
            time.sleep(0.01)
    os.set_blocking(fd, True)
    with os.fdopen(fd, "w") as pipe:
        pipe.write(text)


def test_python_train_pipe_mode_reads_the_fifo_to_eof(tmp_path: Path) -> None:
    ml = make_ml(tmp_path, {"epochs": "2"}, {"train": "Pipe"})
    fifo = ml / "input" / "data" / "train_0"
    os.mkfifo(fifo)
    # Two S3 objects concatenated: the second header must be skipped, not read as a row.
    writer = threading.Thread(target=feed_fifo, args=(fifo, IRIS.read_text() * 2))
    writer.start()

    result = run(sandboxed(ml, PY_EXAMPLE, [*PY_ARGV, "train"], PY_ENV))
    writer.join(timeout=30)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "read 300 rows from train/train_0" in result.stdout
    assert (ml / "model" / "model.json").exists()


def test_python_train_names_a_missing_target_column_in_the_failure_file(tmp_path: Path) -> None:
    ml = make_ml(tmp_path, {"target": "colour"})

    result = run(sandboxed(ml, PY_EXAMPLE, [*PY_ARGV, "train"], PY_ENV))

    assert result.returncode == 1
    assert "'colour'" in (ml / "output" / "failure").read_text()
    assert "colour" in result.stderr
    assert not (ml / "model" / "model.json").exists()


def test_python_train_writes_a_traceback_for_unexpected_errors(tmp_path: Path) -> None:
    ml = make_ml(tmp_path, {})
    (ml / "input" / "config" / "inputdataconfig.json").write_text("{not json")

    result = run(sandboxed(ml, PY_EXAMPLE, [*PY_ARGV, "train"], PY_ENV))

    assert result.returncode == 1
    failure = (ml / "output" / "failure").read_text()
    assert failure.startswith("JSONDecodeError: ")
    assert "Traceback (most recent call last)" in failure


def test_python_train_saves_its_model_on_sigterm_and_exits_0(tmp_path: Path) -> None:
    ml = make_ml(tmp_path, {"epochs": "5", "sleep_per_epoch": "60"})
    command = sandboxed(ml, PY_EXAMPLE, [*PY_ARGV, "train"], PY_ENV)
    sandbox = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert sandbox.stdout is not None
        lines = []
        for line in sandbox.stdout:  # the first epoch is done, the sleep after it has begun
            lines.append(line)
            if line.startswith("epoch=1 "):
                break
        assert lines and lines[-1].startswith("epoch=1 "), "".join(lines)

        os.kill(sandboxed_child(sandbox), signal.SIGTERM)
        rest = sandbox.stdout.read()
        assert sandbox.wait(timeout=30) == 0, "".join(lines) + rest
    finally:
        if sandbox.poll() is None:
            sandbox.kill()
            sandbox.wait()
        if sandbox.stdout is not None:
            sandbox.stdout.close()

    model = json.loads((ml / "model" / "model.json").read_text())
    assert model["stopped"] is True
    assert model["epochs_completed"] == 1
    assert sorted(model["centroids"]) == sorted(SAMPLES)


def test_python_serve_answers_csv_and_json(tmp_path: Path) -> None:
    ml = make_ml(tmp_path, {})
    trained = run(sandboxed(ml, PY_EXAMPLE, [*PY_ARGV, "train"], PY_ENV))
    assert trained.returncode == 0, trained.stdout + trained.stderr
    port = free_port()
    env = {**PY_ENV, "SAGEMAKER_BIND_TO_PORT": str(port)}

    command = sandboxed(ml, PY_EXAMPLE, [*PY_ARGV, "serve"], env)
    with serving(command, port, tmp_path / "serve.log"):
        body = "".join(f"{row}\n" for row in SAMPLES.values())
        status, content_type, text = request(port, "POST", "/invocations", body, "text/csv")
        assert (status, content_type) == (200, "text/csv"), text
        assert text.splitlines() == list(SAMPLES)

        instances = [[float(v) for v in row.split(",")] for row in SAMPLES.values()]
        body = json.dumps({"instances": instances})
        status, content_type, text = request(port, "POST", "/invocations", body, "application/json")
        assert (status, content_type) == (200, "application/json"), text
        assert json.loads(text) == {"predictions": list(SAMPLES)}

        status, _, text = request(port, "POST", "/invocations", "x", "application/x-npy")
        assert status == 415
        assert "text/csv" in text

        status, _, text = request(port, "POST", "/invocations", "1,2\n", "text/csv")
        assert status == 400
        assert "4 values" in text


def test_python_serve_exits_1_without_a_model(tmp_path: Path) -> None:
    ml = make_ml(tmp_path, {})
    env = {**PY_ENV, "SAGEMAKER_BIND_TO_PORT": str(free_port())}

    result = run(sandboxed(ml, PY_EXAMPLE, [*PY_ARGV, "serve"], env))

    assert result.returncode == 1
    assert "/opt/ml/model/model.json" in result.stderr
