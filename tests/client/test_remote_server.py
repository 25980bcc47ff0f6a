"""dockyard's own CLI and SDK against a server on another loopback address (127.0.0.2) with a
DOCKYARD_HOME of its own: the client processes share nothing with it but its URL and a key pair —
not a home, not an AWS variable, not a path. Data and code go up through the S3 API, results come
back through it, and the client keeps nothing under its own DOCKYARD_HOME."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import tarfile
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow

SERVER_ADDRESS = "127.0.0.2"
DEFAULT_BUCKET = "sagemaker-us-east-1-000000000000"
# One typical flower of each species (rows 1, 100 and 101 of examples/data/iris/iris.csv), features
# only: each model here, the BYOC example's nearest centroids too, tells them apart.
IRIS_ROWS = "5.1,3.5,1.4,0.2\n5.7,2.8,4.1,1.3\n6.3,3.3,6.0,2.5\n"
SPECIES = "setosa\nversicolor\nvirginica\n"

# Script mode on the scikit-learn framework image: this file exists only on the client, and
# reaches the server inside sourcedir.tar.gz through the S3 API. Trained as a script; imported
# as the inference module when serving.
TRAIN_AND_SERVE = """
import glob, os
import joblib
import pandas as pd
from sklearn.tree import DecisionTreeClassifier

def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))

def input_fn(body, content_type):
    text = body.decode() if isinstance(body, bytes) else body
    return [[float(v) for v in line.split(",")] for line in text.strip().splitlines()]

def predict_fn(rows, model):
    return list(model.predict(rows))

def output_fn(species, accept):
    return "".join(f"{name}\\n" for name in species), "text/csv"

if __name__ == "__main__":
    files = sorted(glob.glob(os.path.join(os.environ["SM_CHANNEL_TRAINING"], "*.csv")))
    data = pd.concat(pd.read_csv(path) for path in files)
    model = DecisionTreeClassifier(random_state=0)
    model.fit(data.drop(columns=["Species"]).values, data["Species"])
    print(f"trained on {len(data)} rows")
    joblib.dump(model, os.path.join(os.environ["SM_MODEL_DIR"], "model.joblib"))
"""


def dockyard_command() -> list[str]:
    """The installed `dockyard` entry point of this environment (what a user runs)."""
    script = Path(sys.executable).with_name("dockyard")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "dockyard.cli.main"]


def code_path() -> dict[str, str]:
    """Where dockyard's code is (PYTHONPATH when the tests run from a source tree): the program,
    not any state, so both sides may have it."""
    return {"PYTHONPATH": os.environ["PYTHONPATH"]} if os.environ.get("PYTHONPATH") else {}


def files_under(folder: Path) -> list[str]:
    if not folder.exists():
        return []
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def free_port_on(address: str) -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class RemoteServer:
    url: str
    home: Path  # the server's DOCKYARD_HOME ("A"), which no client process is told of
    access_key_id: str
    secret_access_key: str

    def stored(self, bucket: str, key: str) -> Path:
        """An object's file in the server's local store."""
        return self.home / "s3" / bucket / key


@pytest.fixture(scope="module")
def remote(
    tmp_path_factory: pytest.TempPathFactory, shared_envs_dir: Path
) -> Iterator[RemoteServer]:
    """`dockyard server --host 127.0.0.2` in a process of its own, with its own DOCKYARD_HOME and
    HOME. It may read local paths anywhere under pytest's temporary root — where the clients'
    folders are too — so a client that sent a path of its own instead of uploading would not be
    stopped by the server: only the uploads keep client paths off the server."""
    server_side = tmp_path_factory.mktemp("server-machine")
    home, user_home = server_side / "dockyard-home", server_side / "home"
    user_home.mkdir()
    port = free_port_on(SERVER_ADDRESS)
    url = f"http://{SERVER_ADDRESS}:{port}"
    cleared = ("DOCKYARD_", "AWS_", "SM_", "SAGEMAKER_")
    env = {name: value for name, value in os.environ.items() if not name.startswith(cleared)}
    env.update(
        HOME=str(user_home),
        DOCKYARD_HOME=str(home),
        DOCKYARD_ENVS_DIR=str(shared_envs_dir),  # framework environments built once per machine
        DOCKYARD_STOP_GRACE_SECONDS="1",
        # The examples hold the image folder the server's own BYOC job names.
        DOCKYARD_LOCAL_PATHS=f"{tmp_path_factory.getbasetemp()}:{EXAMPLES}",
    )
    log = (server_side / "server.log").open("wb")
    process = subprocess.Popen(
        [*dockyard_command(), "server", "--host", SERVER_ADDRESS, "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the server did not start: {(server_side / 'server.log').read_text()}"
                )
            time.sleep(0.1)
        # The operator, on the server's machine, reads the pair the server made in its home.
        printed = subprocess.run(
            [*dockyard_command(), "credentials"],
            env={**env, "DOCKYARD_ENDPOINT_URL": url},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        exported = dict(
            shlex.split(line.removeprefix("export "))[0].split("=", 1)
            for line in printed.splitlines()
            if line.startswith("export ")
        )
        assert exported["AWS_ENDPOINT_URL"] == url
        yield RemoteServer(
            url, home, exported["AWS_ACCESS_KEY_ID"], exported["AWS_SECRET_ACCESS_KEY"]
        )
    finally:
        os.killpg(process.pid, 15)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()
        log.close()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


@dataclass(frozen=True)
class ClientMachine:
    """The client side: its own DOCKYARD_HOME ("B", never made beforehand), HOME, temporary
    folder and working folder; the environment holds only the server's URL and the keys."""

    work: Path
    dockyard_home: Path
    user_home: Path
    scratch: Path
    env: dict[str, str]

    def dockyard(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*dockyard_command(), *args],
            env=self.env,
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def python(self, program: str) -> subprocess.CompletedProcess[str]:
        (self.work / "notebook.py").write_text(program)
        return subprocess.run(
            [sys.executable, "notebook.py"],
            env=self.env,
            cwd=self.work,
            capture_output=True,
            text=True,
            timeout=600,
        )

    def assert_nothing_kept(self) -> None:
        """A client of a server elsewhere needs no state: nothing under its DOCKYARD_HOME or
        HOME, and no scratch left in its temporary folder."""
        assert files_under(self.dockyard_home) == []
        assert files_under(self.user_home) == []
        assert files_under(self.scratch) == []


@pytest.fixture
def client_machine(tmp_path: Path, remote: RemoteServer) -> ClientMachine:
    work, user_home, scratch = tmp_path / "work", tmp_path / "home", tmp_path / "tmp"
    for folder in (work, user_home, scratch):
        folder.mkdir()
    shutil.copytree(EXAMPLES / "data" / "iris", work / "iris")
    (work / "src").mkdir()
    (work / "src" / "train.py").write_text(TRAIN_AND_SERVE)
    (work / "rows").mkdir()
    (work / "rows" / "rows.csv").write_text(IRIS_ROWS)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(user_home),
        "TMPDIR": str(scratch),
        "DOCKYARD_HOME": str(tmp_path / "dockyard-home"),
        "DOCKYARD_ENDPOINT_URL": remote.url,
        "DOCKYARD_ACCESS_KEY_ID": remote.access_key_id,
        "DOCKYARD_SECRET_ACCESS_KEY": remote.secret_access_key,
        **code_path(),
    }
    return ClientMachine(work, tmp_path / "dockyard-home", user_home, scratch, env)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout


def archive_names(path: Path) -> list[str]:
    with tarfile.open(path) as archive:
        return sorted(archive.getnames())


def test_cli_trains_deploys_invokes_and_transforms_on_a_server_elsewhere(
    remote: RemoteServer, client_machine: ClientMachine
) -> None:
    client = client_machine
    trained = ok(
        client.dockyard(
            "train", "--image", "dockyard/sklearn:1.2-1", "--name", "cli-iris",
            "--entry-point", "train.py", "--source-dir", "src", "--input", "training=iris",
            "--output", "s3://remote-out/cli",
        )
    )  # fmt: skip
    assert "trained on 150 rows" in trained
    assert "Completed" in trained

    described = json.loads(ok(client.dockyard("jobs", "describe", "cli-iris")))
    assert described["TrainingJobStatus"] == "Completed"
    # What the server was given: s3:// URIs of what the CLI uploaded, no path of the client's.
    channel = described["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    assert channel == f"s3://{DEFAULT_BUCKET}/cli-iris/input/training/"
    code = json.loads(described["HyperParameters"]["sagemaker_submit_directory"])
    assert code == f"s3://{DEFAULT_BUCKET}/cli-iris/source/sourcedir.tar.gz"
    assert str(client.work) not in json.dumps(described)
    # ... and the server's own home holds them, byte for byte.
    uploaded = remote.stored(DEFAULT_BUCKET, "cli-iris/input/training/iris.csv")
    assert uploaded.read_bytes() == (client.work / "iris" / "iris.csv").read_bytes()
    archive = remote.stored(DEFAULT_BUCKET, "cli-iris/source/sourcedir.tar.gz")
    assert archive_names(archive) == ["train.py"]
    assert "model.joblib" in archive_names(
        remote.stored("remote-out", "cli/cli-iris/output/model.tar.gz")
    )

    deployed = ok(client.dockyard("deploy", "--job", "cli-iris", "--name", "cli-iris"))
    assert "InService" in deployed
    (client.work / "flowers.csv").write_text(IRIS_ROWS)
    answer = ok(
        client.dockyard(
            "invoke", "cli-iris", "--content-type", "text/csv", "--body", "@flowers.csv"
        )
    )
    assert answer == SPECIES

    # A local input folder goes up; the local output folder is filled from the store.
    transformed = ok(
        client.dockyard(
            "transform", "--job", "cli-iris", "--name", "cli-batch", "--input", "rows",
            "--output", "predictions", "--content-type", "text/csv", "--split-type", "Line",
            "--strategy", "MultiRecord", "--assemble-with", "Line",
        )
    )  # fmt: skip
    assert "Completed" in transformed
    assert (client.work / "predictions" / "rows.csv.out").read_text() == SPECIES
    assert files_under(client.work / "predictions") == ["rows.csv.out"]
    batch = json.loads(ok(client.dockyard("transforms", "describe", "cli-batch")))
    assert batch["TransformJobStatus"] == "Completed"
    assert batch["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == (
        f"s3://{DEFAULT_BUCKET}/data/cli-batch/"
    )
    assert remote.stored(DEFAULT_BUCKET, "cli-batch/output/rows.csv.out").read_text() == SPECIES

    # The model comes back through the S3 API too.
    ok(client.dockyard("s3", "cp", "s3://remote-out/cli/cli-iris/output/model.tar.gz", "model/"))
    assert "model.joblib" in archive_names(client.work / "model" / "model.tar.gz")

    ok(client.dockyard("endpoints", "delete", "cli-iris", "--wait"))
    client.assert_nothing_kept()


def test_cli_image_folder_names_a_folder_on_the_server(
    remote: RemoteServer, client_machine: ClientMachine
) -> None:
    """A BYOC image folder is read by the server from its own disk (there is no image upload):
    this path is the repository's examples folder *on the server's machine*, which here happens
    to be this machine. The data still comes from the client's folder, through the S3 API."""
    client = client_machine
    image = str(EXAMPLES / "python-byoc")
    trained = ok(
        client.dockyard(
            "train", "--image", image, "--name", "byoc-iris", "--input", "train=iris",
            "--hp", "target=Species", "--output", "s3://remote-out/byoc",
        )
    )  # fmt: skip
    assert "Completed" in trained
    described = json.loads(ok(client.dockyard("jobs", "describe", "byoc-iris")))
    assert described["AlgorithmSpecification"]["TrainingImage"] == image
    channel = described["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    assert channel == f"s3://{DEFAULT_BUCKET}/byoc-iris/input/train/"
    ok(client.dockyard("deploy", "--job", "byoc-iris", "--name", "byoc-iris"))
    answer = ok(
        client.dockyard(
            "invoke", "byoc-iris", "--content-type", "text/csv", "--body", IRIS_ROWS.strip()
        )
    )
    assert answer.split() == SPECIES.split()
    ok(client.dockyard("endpoints", "delete", "byoc-iris", "--wait"))
    client.assert_nothing_kept()


def test_cli_mistakes_with_local_paths_give_one_clear_line(
    client_machine: ClientMachine,
) -> None:
    client = client_machine
    missing = client.dockyard(
        "train", "--image", "dockyard/sklearn:1.2-1", "--input", "training=nowhere"
    )
    assert missing.returncode == 1, missing.stdout + missing.stderr
    assert missing.stderr == "error: --input training nowhere: nowhere does not exist\n"
    half = client.dockyard("train", "--image", "dockyard/sklearn:1.2-1", "--entry-point", "t.py")
    assert half.returncode == 2 and "takes both --entry-point and --source-dir" in half.stderr
    # `--detach` cannot download the output later: a local --output needs the CLI to wait.
    result = client.dockyard(
        "transform", "--model", "whatever", "--input", "rows", "--output", "predictions",
        "--detach",
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot write the local folder predictions" in result.stderr
    assert "give an s3:// --output, or leave out --detach" in result.stderr
    client.assert_nothing_kept()


NOTEBOOK = textwrap.dedent(
    """
    import json
    import dockyard.sdk as sagemaker
    from dockyard.sdk.deserializers import CSVDeserializer
    from dockyard.sdk.serializers import CSVSerializer
    from dockyard.sdk.sklearn import SKLearn

    session = sagemaker.Session()
    estimator = SKLearn(
        entry_point="train.py", source_dir="src", framework_version="1.2-1",
        role=sagemaker.get_execution_role(), instance_count=1, instance_type="ml.m5.large",
        output_path="s3://remote-out/sdk", base_job_name="sdk-iris",
    )
    estimator.fit({"training": "iris"})  # a local folder: uploaded for a server elsewhere
    job = estimator.latest_training_job.describe()

    predictor = estimator.deploy(
        initial_instance_count=1, instance_type="ml.m5.large", endpoint_name="sdk-iris",
        serializer=CSVSerializer(), deserializer=CSVDeserializer(),
    )
    rows = [[5.1, 3.5, 1.4, 0.2], [5.7, 2.8, 4.1, 1.3], [6.3, 3.3, 6.0, 2.5]]
    predicted = predictor.predict(rows)

    batch_input = session.upload_data("rows", key_prefix="sdk-batch/input")
    transformer = estimator.transformer(
        instance_count=1, instance_type="ml.m5.large", strategy="MultiRecord",
        assemble_with="Line", output_path="s3://remote-out/sdk-batch",
    )
    transformer.transform(batch_input, content_type="text/csv", split_type="Line")
    batch = transformer.latest_transform_job.describe()
    downloaded = session.download_data("out", "remote-out", "sdk-batch")

    local_output = estimator.transformer(
        instance_count=1, instance_type="ml.m5.large", output_path="local-predictions"
    )
    try:
        local_output.transform(batch_input, content_type="text/csv")
        refused = None
    except ValueError as exc:
        refused = str(exc)
    predictor.delete_endpoint()
    print(json.dumps({
        "job": job, "predicted": predicted, "batch": batch, "downloaded": downloaded,
        "output": open("out/rows.csv.out").read(), "refused": refused,
    }, default=str))
    """
)


def test_sdk_fits_deploys_predicts_and_transforms_on_a_server_elsewhere(
    remote: RemoteServer, client_machine: ClientMachine
) -> None:
    client = client_machine
    result = client.python(NOTEBOOK)
    assert result.returncode == 0, result.stdout + result.stderr
    printed = json.loads(result.stdout.strip().splitlines()[-1])

    job = printed["job"]
    name = job["TrainingJobName"]
    assert job["TrainingJobStatus"] == "Completed"
    channel = job["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"]
    assert channel == f"s3://{DEFAULT_BUCKET}/{name}/input/training/"
    code = json.loads(job["HyperParameters"]["sagemaker_submit_directory"])
    assert code == f"s3://remote-out/{name}/source/sourcedir.tar.gz"
    assert str(client.work) not in json.dumps(job)
    uploaded = remote.stored(DEFAULT_BUCKET, f"{name}/input/training/iris.csv")
    assert uploaded.read_bytes() == (client.work / "iris" / "iris.csv").read_bytes()
    archive = remote.stored("remote-out", f"{name}/source/sourcedir.tar.gz")
    assert archive_names(archive) == ["train.py"]

    assert printed["predicted"] == [[species] for species in SPECIES.split()]

    batch = printed["batch"]
    assert batch["TransformJobStatus"] == "Completed"
    assert batch["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == (
        f"s3://{DEFAULT_BUCKET}/sdk-batch/input"
    )
    assert remote.stored(DEFAULT_BUCKET, "sdk-batch/input/rows.csv").read_text() == IRIS_ROWS
    assert printed["output"] == SPECIES
    assert printed["downloaded"] == ["out/rows.csv.out"]
    assert remote.stored("remote-out", "sdk-batch/rows.csv.out").read_text() == SPECIES

    assert printed["refused"] is not None
    assert "local-predictions is a local folder" in printed["refused"]
    assert not (client.work / "local-predictions").exists()
    client.assert_nothing_kept()
