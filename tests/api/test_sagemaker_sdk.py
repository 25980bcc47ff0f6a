"""The real SageMaker Python SDK (v2) as a client, in its own virtual environment, running a
user's script against a dockyard server: data up through the S3 API, a BYOC R estimator trained
with its log printed, deployed, invoked and used for batch transform, and a scikit-learn
framework estimator whose code the SDK uploads itself."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import EXAMPLES, RunningServer, free_port

pytestmark = pytest.mark.slow

SDK_VENV = Path(__file__).resolve().parents[2] / ".venv-sdk"
SDK_REQUIREMENT = "sagemaker>=2.200,<3"
IRIS = EXAMPLES / "data" / "iris" / "iris.csv"
SKLEARN_SOURCE = Path(__file__).resolve().parent / "sdk_sklearn"
ROLE = "arn:aws:iam::111111111111:role/r"


@pytest.fixture(scope="session")
def sdk_python() -> Path:
    """A virtual environment holding the SageMaker SDK, apart from dockyard's own (the SDK
    pins many packages); made once and reused."""
    python = SDK_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(SDK_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", SDK_REQUIREMENT], check=True, timeout=900
        )
    return python


@pytest.fixture
def sdk_server(clean_env: Path, shared_envs_dir: Path) -> Iterator[RunningServer]:
    """A server whose framework environments (scikit-learn's) are the machine's shared ones."""
    from dockyard.settings import Settings

    settings = Settings(
        home=clean_env, port=free_port(), envs_dir=shared_envs_dir, stop_grace_seconds=2.0
    )
    running = RunningServer(settings)
    try:
        yield running
    finally:
        running.close()


def sdk_env(server: RunningServer, tmp_path: Path, config: str = "") -> dict[str, str]:
    """What a user sets for the SDK: the endpoint and keys `dockyard credentials` prints, and
    the SDK's own config file with telemetry off (plus `config`, more of that file)."""
    config_file = tmp_path / "sagemaker-config.yaml"
    config_file.write_text(
        "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n"
        "      TelemetryOptOut: true\n" + config
    )
    return {
        **os.environ,
        "AWS_ENDPOINT_URL": server.url,
        "AWS_ACCESS_KEY_ID": server.access_key.access_key_id,
        "AWS_SECRET_ACCESS_KEY": server.access_key.secret_access_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config_file),
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }


def run_script(
    python: Path,
    script: Path,
    env: dict[str, str],
    on_line: Callable[[str], None] = lambda line: None,
    deadline_seconds: float = 600.0,
) -> list[str]:
    """Run a user's script, unbuffered as in a terminal, handing each output line to `on_line`
    as it is printed; return every line, and fail with them if the script fails."""
    process = subprocess.Popen(
        [str(python), "-u", str(script)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    watchdog = threading.Timer(deadline_seconds, process.kill)
    watchdog.start()
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            on_line(line)
        returncode = process.wait()
    finally:
        watchdog.cancel()
        process.kill()
    assert returncode == 0, "\n".join(lines[-80:])
    return lines


def result_of(lines: list[str]) -> dict[str, Any]:
    """The JSON the script prints on its `RESULT ` line."""
    found = [line.removeprefix("RESULT ") for line in lines if line.startswith("RESULT ")]
    assert len(found) == 1, "\n".join(lines[-80:])
    return dict(json.loads(found[0]))


def between(lines: list[str], first: str, last: str) -> str:
    """The output from the line `first` to the line `last`."""
    return "\n".join(lines[lines.index(first) : lines.index(last) + 1])


def iris_species() -> list[str]:
    return [line.rsplit(",", 1)[1] for line in IRIS.read_text().splitlines()[1:]]


def read_object(s3: Any, uri: str) -> bytes:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())


def tar_members(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {
            member.name: tar.extractfile(member).read()  # type: ignore[union-attr]
            for member in tar.getmembers()
            if member.isfile()
        }


def assert_gone(describe: Callable[[], Any]) -> None:
    with pytest.raises(ClientError) as refused:
        describe()
    assert refused.value.response["Error"]["Code"] == "ValidationException"


# A notebook's code as it runs on SageMaker: nothing in it names dockyard, and no bucket is
# given (the SDK's config file names the default bucket; see test_r_estimator_end_to_end).
R_SCRIPT = textwrap.dedent(
    """
    import json
    import sagemaker
    from sagemaker.estimator import Estimator
    from sagemaker.s3 import S3Downloader
    from sagemaker.serializers import CSVSerializer

    session = sagemaker.Session()
    train = session.upload_data({iris_folder!r}, key_prefix="iris/train")
    batch = session.upload_data({features!r}, key_prefix="iris/batch")

    estimator = Estimator(
        image_uri={image!r},
        role={role!r},
        instance_count=1,
        instance_type="ml.m5.large",
        hyperparameters={{"target": "Species"}},
    )
    print("FIT BEGINS")
    estimator.fit({{"train": train}}, logs=True)
    print("FIT ENDS")
    # What a later notebook does: find the job again, and list the data it trained on.
    attached = Estimator.attach(estimator.latest_training_job.name)
    listed = S3Downloader.list(train)

    predictor = estimator.deploy(
        initial_instance_count=1, instance_type="ml.m5.large", serializer=CSVSerializer()
    )
    with open({features!r}) as rows:
        features = [[float(value) for value in row.split(",")] for row in rows]
    predicted = predictor.predict(features).decode().split()

    transformer = estimator.transformer(
        instance_count=1, instance_type="ml.m5.large", accept="text/csv"
    )
    transformer.transform(batch, content_type="text/csv", split_type="Line")

    predictor.delete_endpoint()
    print("RESULT " + json.dumps({{
        "bucket": session.default_bucket(),
        "train": train,
        "batch": batch,
        "job": estimator.latest_training_job.name,
        "model_data": estimator.model_data,
        "attached": [attached.model_data, attached.hyperparameters()],
        "listed": listed,
        "endpoint": predictor.endpoint_name,
        "predicted": predicted,
        "transform_job": transformer.latest_transform_job.name,
        "transform_output": transformer.output_path,
    }}))
    """
)


def test_r_estimator_end_to_end(
    sdk_server: RunningServer, sdk_python: Path, tmp_path: Path
) -> None:
    """upload_data, Estimator.fit with logs, Estimator.attach, S3Downloader.list, deploy,
    predict, transform and delete_endpoint with the R randomForest BYOC image folder.

    The script passes no bucket: the SDK's default_bucket() then asks STS for the account at
    https://sts.<region>.amazonaws.com, an endpoint_url it sets itself and which outranks
    AWS_ENDPOINT_URL, so no endpoint setting can send that call to dockyard. The SDK's config
    file names the bucket instead (SageMaker.PythonSDK.Modules.Session.DefaultS3Bucket), and
    the SDK makes it through the S3 API (ListBuckets, HeadBucket 404, CreateBucket)."""
    features = tmp_path / "features.csv"
    features.write_text(
        "".join(line.rsplit(",", 1)[0] + "\n" for line in IRIS.read_text().splitlines()[1:])
    )
    script = tmp_path / "notebook.py"
    script.write_text(
        R_SCRIPT.format(
            iris_folder=str(IRIS.parent),
            features=str(features),
            image=str(EXAMPLES / "r-randomforest"),
            role=ROLE,
        )
    )
    env = sdk_env(
        sdk_server,
        tmp_path,
        "      Session:\n        DefaultS3Bucket: sagemaker-iris-notebooks\n",
    )
    lines = run_script(sdk_python, script, env)
    result = result_of(lines)
    s3 = sdk_server.client("s3")
    sagemaker = sdk_server.client("sagemaker")

    # The data went up through the S3 API, into the bucket the SDK made.
    bucket = result["bucket"]
    assert bucket == "sagemaker-iris-notebooks"
    assert result["train"] == f"s3://{bucket}/iris/train"
    assert result["batch"] == f"s3://{bucket}/iris/batch/features.csv"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="iris/")["Contents"]
    assert sorted(entry["Key"] for entry in listed) == [
        "iris/batch/features.csv",
        "iris/train/iris.csv",
    ]
    assert read_object(s3, f"{result['train']}/iris.csv") == IRIS.read_bytes()
    assert result["listed"] == [f"{result['train']}/iris.csv"]  # S3Downloader.list: ListObjects

    # fit printed the job's own log (read through CloudWatch Logs' API) before it returned.
    fit = between(lines, "FIT BEGINS", "FIT ENDS")
    assert "hyperparameters: target=Species ntree=100 seed=42" in fit
    assert "read 150 rows x 5 columns from iris.csv" in fit
    assert "train:accuracy=0.9" in fit
    assert "Completed - Training job completed" in fit
    job = result["job"]
    assert job.startswith("r-randomforest-")
    assert result["model_data"] == f"s3://{bucket}/{job}/output/model.tar.gz"
    assert "model.rds" in tar_members(read_object(s3, result["model_data"]))
    described = sagemaker.describe_training_job(TrainingJobName=job)
    assert described["TrainingJobStatus"] == "Completed"
    assert described["HyperParameters"] == {"target": "Species"}
    assert result["attached"] == [result["model_data"], {"target": "Species"}]

    # The endpoint answered CSV with a species per row, most of them right.
    species = iris_species()
    predicted = result["predicted"]
    assert len(predicted) == len(species) == 150
    assert sum(p == s for p, s in zip(predicted, species, strict=True)) >= 140

    # The transform job's output, read back through the S3 API: one line per input line.
    after_fit = "\n".join(lines[lines.index("FIT ENDS") :])
    assert "features.csv: done on algo-1" in after_fit  # transform() printed the job's log
    transform = sagemaker.describe_transform_job(TransformJobName=result["transform_job"])
    assert transform["TransformJobStatus"] == "Completed"
    output = read_object(s3, f"{result['transform_output']}/features.csv.out").decode()
    assert output.splitlines() == predicted

    # delete_endpoint took the endpoint and its configuration away.
    assert_gone(lambda: sagemaker.describe_endpoint(EndpointName=result["endpoint"]))
    assert_gone(lambda: sagemaker.describe_endpoint_config(EndpointConfigName=result["endpoint"]))


SKLEARN_SCRIPT = textwrap.dedent(
    """
    import json
    import sagemaker
    from sagemaker.deserializers import CSVDeserializer
    from sagemaker.serializers import CSVSerializer
    from sagemaker.sklearn import SKLearn

    session = sagemaker.Session(default_bucket="sklearn-work")
    train = session.upload_data({iris!r}, key_prefix="data/iris")

    estimator = SKLearn(
        entry_point="train.py",
        source_dir={source!r},
        framework_version="1.2-1",
        py_version="py3",
        role={role!r},
        instance_count=1,
        instance_type="ml.m5.large",
        hyperparameters={{"epochs": 20, "epoch-seconds": 1}},
        sagemaker_session=session,
    )
    estimator.fit({{"train": train}}, logs=True, job_name="sdk-sklearn")
    print("FIT ENDS")

    predictor = estimator.deploy(
        initial_instance_count=1,
        instance_type="ml.m5.large",
        serializer=CSVSerializer(),
        deserializer=CSVDeserializer(),
    )
    predicted = predictor.predict([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]])
    predictor.delete_endpoint()
    print("RESULT " + json.dumps({{
        "model_data": estimator.model_data,
        "endpoint": predictor.endpoint_name,
        "predicted": predicted,
    }}))
    """
)


def test_sklearn_estimator_uploads_its_code_and_serves(
    sdk_server: RunningServer, sdk_python: Path, tmp_path: Path
) -> None:
    """SKLearn(entry_point, source_dir): the SDK packs sourcedir.tar.gz and puts it through the
    S3 API; the job (SageMaker's scikit-learn image URI, run on dockyard's sklearn 1.2-1
    environment) runs the entry point, whose log fit prints while the job still runs; the model
    deploys with the same code's model_fn and predicts."""
    script = tmp_path / "notebook.py"
    script.write_text(SKLEARN_SCRIPT.format(iris=str(IRIS), source=str(SKLEARN_SOURCE), role=ROLE))
    sagemaker = sdk_server.client("sagemaker")
    status_at_first_epoch: list[str] = []

    def watch(line: str) -> None:
        if line.startswith("epoch 1/20") and not status_at_first_epoch:
            described = sagemaker.describe_training_job(TrainingJobName="sdk-sklearn")
            status_at_first_epoch.append(described["TrainingJobStatus"])

    lines = run_script(sdk_python, script, sdk_env(sdk_server, tmp_path), on_line=watch)
    result = result_of(lines)
    s3 = sdk_server.client("s3")

    # The SDK printed the entry point's log while the job was running.
    assert status_at_first_epoch == ["InProgress"]
    fit = "\n".join(lines[: lines.index("FIT ENDS")])
    assert "epoch 20/20: trees=100" in fit
    assert "train_accuracy=1.0000" in fit
    assert "Completed - Training job completed" in fit

    # sourcedir.tar.gz is in the bucket the SDK chose, and holds the entry point as given.
    source_key = "sdk-sklearn/source/sourcedir.tar.gz"
    listed = s3.list_objects_v2(Bucket="sklearn-work", Prefix="sdk-sklearn/")["Contents"]
    assert source_key in [entry["Key"] for entry in listed]
    packed = tar_members(read_object(s3, f"s3://sklearn-work/{source_key}"))
    assert packed["train.py"] == (SKLEARN_SOURCE / "train.py").read_bytes()
    described = sagemaker.describe_training_job(TrainingJobName="sdk-sklearn")
    assert described["TrainingJobStatus"] == "Completed"
    assert described["AlgorithmSpecification"]["TrainingImage"].endswith(
        "/sagemaker-scikit-learn:1.2-1-cpu-py3"
    )
    assert json.loads(described["HyperParameters"]["sagemaker_submit_directory"]) == (
        f"s3://sklearn-work/{source_key}"
    )

    # What the entry point wrote into the model.
    assert result["model_data"] == "s3://sklearn-work/sdk-sklearn/output/model.tar.gz"
    model = tar_members(read_object(s3, result["model_data"]))
    assert "model.joblib" in model
    assert json.loads(model["trained_on.json"]) == {
        "rows": 150,
        "classes": ["setosa", "versicolor", "virginica"],
    }

    assert result["predicted"] == [["setosa"], ["virginica"]]
    assert_gone(lambda: sagemaker.describe_endpoint(EndpointName=result["endpoint"]))
