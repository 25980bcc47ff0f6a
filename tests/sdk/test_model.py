"""Models: the CreateModel container they build (a pure function of the model, its code and
where the server is), and notebook code that trains, deploys, predicts and deletes on a real
server with real sandboxes."""

from __future__ import annotations

import json
import re
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

import dockyard.sdk as sagemaker
from dockyard.sdk.deserializers import CSVDeserializer, JSONDeserializer, StringDeserializer
from dockyard.sdk.exceptions import UnexpectedStatusException
from dockyard.sdk.model import FrameworkModel, Model
from dockyard.sdk.pytorch import PyTorchModel, PyTorchPredictor
from dockyard.sdk.serializers import CSVSerializer, JSONSerializer
from dockyard.sdk.sklearn import SKLearnModel, SKLearnPredictor
from dockyard.settings import Settings
from tests.conftest import RunningServer, free_port, make_image
from tests.sdk.helpers import DEFAULT_BUCKET, HTTP_CONTAINER, NAME_STAMP, archive_names

# One BYOC image that trains (writes a scale into model.json) and serves (CSV rows in, the
# scaled row sums out as JSON; anything but CSV is refused with 415).
TRAIN_AND_SERVE = (
    r"""
import json, os, pathlib, sys
if sys.argv[1] == "train":
    hps = json.load(open("/opt/ml/input/config/hyperparameters.json"))
    model = {"scale": float(hps.get("scale", "1"))}
    pathlib.Path("/opt/ml/model/model.json").write_text(json.dumps(model))
    print("trained", model)
    sys.exit(0)
if sys.argv[1] != "serve":
    sys.exit("unknown command " + sys.argv[1])
if os.environ.get("FAIL_TO_SERVE"):
    sys.exit("cannot serve: " + os.environ["FAIL_TO_SERVE"])
model = json.load(open("/opt/ml/model/model.json"))
"""
    + HTTP_CONTAINER
    + r"""
class Handler(Container):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Type") != "text/csv":
            self.reply(415, b"send text/csv", "text/plain")
            return
        rows = [[float(x) for x in line.split(",")] for line in body.decode().splitlines() if line]
        answer = {"predictions": [sum(row) * model["scale"] for row in rows]}
        self.reply(200, json.dumps(answer).encode(), "application/json")
print("serving", model, flush=True)
serve(Handler)
"""
)

# Inference code for a framework image: a linear model, JSON and CSV in and out by default.
INFERENCE = """
import json, os

def model_fn(model_dir):
    with open(os.path.join(model_dir, "weights.json")) as f:
        return json.load(f)

def predict_fn(data, model):
    rows = data if data and isinstance(data[0], list) else [data]
    return [sum(w * x for w, x in zip(model["weights"], row)) + model["bias"] for row in rows]
"""

# Training code whose module also serves: model_fn / predict_fn beside the training under
# `if __name__ == "__main__"`, as SageMaker framework scripts are written.
TRAIN_SCRIPT = """
import argparse, json, os

def model_fn(model_dir):
    with open(os.path.join(model_dir, "offset.json")) as f:
        return json.load(f)["offset"]

def predict_fn(data, model):
    return {"shifted": [x + model for x in data]}

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--offset", type=float)
    args = parser.parse_args()
    with open(os.path.join(os.environ["SM_MODEL_DIR"], "offset.json"), "w") as f:
        json.dump({"offset": args.offset}, f)
"""


@pytest.fixture
def source(tmp_path: Path) -> Path:
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "inference.py").write_text(INFERENCE)
    return folder


def model_archive(folder: Path, **files: Any) -> Path:
    """A model.tar.gz holding each keyword as `<name>.json`."""
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, content in files.items():
            path = folder / f"{name}.json"
            path.write_text(json.dumps(content))
            tar.add(path, arcname=path.name)
    return archive


# -- the CreateModel container ----------------------------------------------------------------


def test_inference_code_is_named_in_the_environment_and_read_in_place(source: Path) -> None:
    model = Model(
        image_uri="dockyard/python:3.11",
        model_data="s3://models/linear/model.tar.gz",
        entry_point="inference.py",
        source_dir=str(source),
        env={"SAGEMAKER_MODEL_SERVER_TIMEOUT": "30"},
    )
    assert model.prepare_container_def() == {
        "Image": "dockyard/python:3.11",
        "ModelDataUrl": "s3://models/linear/model.tar.gz",
        "Environment": {
            "SAGEMAKER_MODEL_SERVER_TIMEOUT": "30",
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": f"file://{source}",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            "SAGEMAKER_REGION": "us-east-1",
        },
    }


def test_against_a_remote_server_code_and_model_data_are_uploaded(
    source: Path, tmp_path: Path, server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server named by its URL: the SDK uploads through its S3 API instead of naming files.
    monkeypatch.setenv("DOCKYARD_ENDPOINT_URL", server.url)
    (source / "helpers.py").write_text("X = 1\n")
    archive = model_archive(tmp_path / "trained", weights={"weights": [1], "bias": 0})
    model = Model(
        "dockyard/python:3.11",
        str(archive),
        entry_point="inference.py",
        source_dir=str(source),
        name="linear-1",
    )
    container = model.prepare_container_def()
    code = f"s3://{DEFAULT_BUCKET}/linear-1/source/sourcedir.tar.gz"
    assert container["Environment"]["SAGEMAKER_SUBMIT_DIRECTORY"] == code
    assert archive_names(code) == ["helpers.py", "inference.py"]
    assert container["ModelDataUrl"] == f"s3://{DEFAULT_BUCKET}/linear-1/model/model.tar.gz"
    assert archive_names(container["ModelDataUrl"]) == ["weights.json"]


def test_a_model_without_code_passes_its_environment_untouched() -> None:
    model = Model("my/image:1", "s3://b/m.tar.gz", env={"A": "1"})
    assert model.prepare_container_def() == {
        "Image": "my/image:1",
        "ModelDataUrl": "s3://b/m.tar.gz",
        "Environment": {"A": "1"},
    }
    assert Model("my/image:1").prepare_container_def() == {
        "Image": "my/image:1",
        "Environment": {},
    }


def test_framework_models_name_their_image_workers_and_predictor(source: Path) -> None:
    sk = SKLearnModel(
        "s3://b/m.tar.gz",
        entry_point="inference.py",
        source_dir=str(source),
        framework_version="1.2-1",
        model_server_workers=2,
    )
    container = sk.prepare_container_def()
    assert container["Image"] == "dockyard/sklearn:1.2-1"
    assert container["Environment"]["SAGEMAKER_MODEL_SERVER_WORKERS"] == "2"
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert sk.predictor_cls is SKLearnPredictor
    pt = PyTorchModel(
        "s3://b/m.tar.gz",
        entry_point="inference.py",
        source_dir=str(source),
        framework_version="2.13",
        py_version="py311",
    )
    assert pt.prepare_container_def()["Image"] == "dockyard/pytorch:2.13"
    assert pt.predictor_cls is PyTorchPredictor
    own = PyTorchModel(
        "s3://b/m.tar.gz",
        entry_point=str(source / "inference.py"),
        image_uri="dockyard/python:3.11",
    )
    assert own.prepare_container_def()["Image"] == "dockyard/python:3.11"
    with pytest.raises(ValueError, match="framework_version was None, yet image_uri"):
        SKLearnModel("s3://b/m.tar.gz", entry_point="inference.py")
    with pytest.raises(ValueError, match="Python 3 only"):
        SKLearnModel("s3://b/m.tar.gz", framework_version="1.2-1", py_version="py2")


def test_a_framework_model_always_names_its_code(source: Path) -> None:
    model = FrameworkModel("s3://b/m.tar.gz", "dockyard/python:3.11")
    env = model.prepare_container_def()["Environment"]
    # No entry point: the toolkit's default program (inference.py under model/code) is used.
    assert env["SAGEMAKER_PROGRAM"] == "" and env["SAGEMAKER_SUBMIT_DIRECTORY"] == ""


def test_names_come_from_the_image_and_are_new_for_every_model() -> None:
    model = Model("dockyard/python:3.11")
    model._ensure_name()
    first = model.name
    assert first is not None and re.fullmatch(f"python-{NAME_STAMP}", first)
    time.sleep(0.002)
    model._ensure_name()
    assert model.name != first and model.name.startswith("python-")  # type: ignore[union-attr]
    named = Model("dockyard/python:3.11", name="mine")
    named._ensure_name()
    assert named.name == "mine"


def test_what_dockyard_cannot_do_is_refused_before_any_request(source: Path) -> None:
    model = Model("dockyard/python:3.11")
    with pytest.raises(ValueError, match="Must specify instance type and instance count"):
        model.deploy()
    with pytest.raises(ValueError, match="serverless inference is not supported"):
        model.deploy(serverless_inference_config={"MemorySizeInMB": 2048})
    with pytest.raises(ValueError, match="asynchronous inference are not supported"):
        model.deploy(1, "ml.m5.large", async_inference_config=object())
    with pytest.raises(ValueError, match="Elastic Inference"):
        model.deploy(1, "ml.m5.large", accelerator_type="ml.eia1.medium")
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        model.deploy(1, "ml.m5.large", colour="blue")
    with pytest.raises(ValueError, match="git_config is not supported"):
        Model("dockyard/python:3.11", git_config={"repo": "x"})
    with pytest.raises(ValueError, match="source_dir needs an entry_point"):
        Model("dockyard/python:3.11", source_dir=str(source))
    with pytest.raises(ValueError, match="must be created first"):
        model.delete_model()


def test_v1_image_argument_is_renamed_with_a_warning() -> None:
    with pytest.deprecated_call(match="image is the SageMaker SDK v1 name; use image_uri"):
        model = Model(model_data="s3://b/m.tar.gz", image="my/image:1")
    assert model.image_uri == "my/image:1"


def test_v2_removals_warn_and_do_nothing() -> None:
    est = sagemaker.estimator.Estimator("my/image:1")
    with pytest.deprecated_call(match="is a no-op in the SageMaker SDK v2"):
        est.delete_endpoint()
    with pytest.raises(ValueError, match="no training job yet"):
        est.deploy(1, "ml.m5.large")
    with pytest.raises(ValueError, match="no training job yet"):
        est.transformer(1, "ml.m5.large")


def test_roles_become_arns_without_iam() -> None:
    session = sagemaker.Session()
    assert session.expand_role("Scientist") == "arn:aws:iam::000000000000:role/Scientist"
    assert session.expand_role("arn:aws:iam::1:role/x") == "arn:aws:iam::1:role/x"
    assert session.expand_role(None) == sagemaker.get_execution_role()


def test_hosting_request_helpers_are_shaped_as_the_sdks() -> None:
    assert sagemaker.production_variant("m", "ml.m5.large", 2) == {
        "VariantName": "AllTraffic",
        "ModelName": "m",
        "InitialVariantWeight": 1,
        "InitialInstanceCount": 2,
        "InstanceType": "ml.m5.large",
    }
    assert sagemaker.production_variant(
        "m", "local", container_startup_health_check_timeout=120
    ) == {
        "VariantName": "AllTraffic",
        "ModelName": "m",
        "InitialVariantWeight": 1,
        "InitialInstanceCount": 1,
        "InstanceType": "local",
        "ContainerStartupHealthCheckTimeoutInSeconds": 120,
    }
    assert sagemaker.container_def("img", "s3://b/m.tar.gz", {"A": "1"}) == {
        "Image": "img",
        "Environment": {"A": "1"},
        "ModelDataUrl": "s3://b/m.tar.gz",
    }


# -- real endpoints ---------------------------------------------------------------------------


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return make_image(tmp_path / "images" / "scaler", TRAIN_AND_SERVE)


def gone(sagemaker_client: Any, endpoint: str, deadline: float = 60.0) -> bool:
    """Wait until DescribeEndpoint says the endpoint does not exist."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            sagemaker_client.describe_endpoint(EndpointName=endpoint)
        except ClientError as exc:
            return exc.response["Error"]["Code"] == "ValidationException"
        time.sleep(0.1)
    return False


@pytest.mark.slow
def test_notebook_trains_deploys_predicts_updates_and_deletes(
    sdk_server: RunningServer, image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    est = sagemaker.estimator.Estimator(
        image_uri=str(image),
        role=sagemaker.get_execution_role(),
        instance_count=1,
        instance_type="ml.m5.large",
        output_path="s3://bucket/out",
        hyperparameters={"scale": 2},
    )
    est.fit(logs=False)
    predictor = est.deploy(
        initial_instance_count=1,
        instance_type="ml.m5.large",
        serializer=CSVSerializer(),
        deserializer=JSONDeserializer(),
    )
    assert capsys.readouterr().out.endswith("!")  # the SDK's `---!` while waiting
    assert isinstance(predictor, sagemaker.Predictor)
    assert predictor.content_type == "text/csv"
    assert predictor.accept == ("application/json",)
    assert predictor.predict([[1, 2], [3, 4.5]]) == {"predictions": [6.0, 15.0]}
    assert predictor.predict([5, 5]) == {"predictions": [20.0]}

    name = predictor.endpoint_name
    assert re.fullmatch(f"scaler-{NAME_STAMP}", name)
    client = sdk_server.client("sagemaker")
    described = client.describe_endpoint(EndpointName=name)
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == name  # the SDK names model, config and endpoint
    model = client.describe_model(ModelName=name)["PrimaryContainer"]
    assert model["Image"] == str(image)
    assert model["ModelDataUrl"] == est.model_data

    # A container's refusal arrives as botocore's ClientError, as from SageMaker.
    with pytest.raises(ClientError) as refused:
        predictor.predict("1,2", initial_args={"ContentType": "application/json"})
    error = refused.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["OriginalStatusCode"] == 415
    assert error["OriginalMessage"] == "send text/csv"

    predictor.update_endpoint(initial_instance_count=2, instance_type="ml.m5.large")
    described = client.describe_endpoint(EndpointName=name)
    assert described["EndpointConfigName"] != name
    assert described["EndpointConfigName"].startswith(name[:20])
    assert described["ProductionVariants"][0]["CurrentInstanceCount"] == 2
    assert predictor.predict([[1, 1]]) == {"predictions": [4.0]}

    predictor.delete_endpoint()
    predictor.delete_model()
    assert gone(client, name)
    assert client.list_models()["Models"] == []
    configs = [c["EndpointConfigName"] for c in client.list_endpoint_configs()["EndpointConfigs"]]
    assert configs == [name]  # the first config stays, as with the SDK: only the current goes


@pytest.mark.slow
def test_a_failing_endpoint_raises_with_its_reason(sdk_server: RunningServer, image: Path) -> None:
    archive = model_archive(image.parent / "m", model={"scale": 1})
    model = Model(str(image), str(archive), env={"FAIL_TO_SERVE": "no GPU here"})
    with pytest.raises(UnexpectedStatusException) as raised:
        model.deploy(1, "ml.m5.large", endpoint_name="broken")
    message = str(raised.value)
    assert message.startswith("Error hosting endpoint broken: Failed. Reason: ")
    assert "cannot serve: no GPU here" in message  # the container's last words
    assert message.endswith("Its log is in the log group /aws/sagemaker/Endpoints/broken.")
    assert raised.value.actual_status == "Failed"
    assert raised.value.allowed_statuses == ["InService"]


@pytest.mark.slow
def test_predictor_for_an_existing_endpoint_and_deploy_without_waiting(
    sdk_server: RunningServer, image: Path
) -> None:
    archive = model_archive(image.parent / "m", model={"scale": 10})
    model = Model(str(image), str(archive), name="scaler-by-hand")
    returned = model.deploy(1, "ml.m5.large", endpoint_name="by-hand", wait=False)
    assert returned.endpoint_name == "by-hand"
    sagemaker.Session().wait_for_endpoint("by-hand")
    predictor = sagemaker.predictor.Predictor(
        "by-hand", serializer=CSVSerializer(), deserializer=StringDeserializer()
    )
    assert json.loads(predictor.predict("1,2")) == {"predictions": [30.0]}
    raw = sagemaker.predictor.Predictor("by-hand")
    assert raw.content_type == "application/octet-stream" and raw.accept == ("*/*",)
    answer = raw.predict(b"1,1", initial_args={"ContentType": "text/csv"})
    assert json.loads(answer) == {"predictions": [20.0]}

    # deploy(update_endpoint=True) moves the endpoint to another model, blue/green.
    smaller = model_archive(image.parent / "m2", model={"scale": 0.5})
    Model(str(image), str(smaller), name="scaler-v2").deploy(
        1, "ml.m5.large", endpoint_name="by-hand", update_endpoint=True
    )
    assert json.loads(predictor.predict("1,2")) == {"predictions": [1.5]}
    # An update whose instances never come up is rolled back, and said so.
    broken = Model(str(image), str(smaller), name="scaler-v3", env={"FAIL_TO_SERVE": "oops"})
    with pytest.raises(UnexpectedStatusException, match=r"rolled back\. Reason: .*oops"):
        broken.deploy(1, "ml.m5.large", endpoint_name="by-hand", update_endpoint=True)
    assert json.loads(predictor.predict("1,2")) == {"predictions": [1.5]}

    raw.delete_endpoint(delete_endpoint_config=False)
    client = sdk_server.client("sagemaker")
    assert gone(client, "by-hand")
    configs = client.list_endpoint_configs(SortOrder="Ascending")["EndpointConfigs"]
    assert [c["EndpointConfigName"] for c in configs] == ["by-hand", "scaler-v2", "scaler-v3"]
    for name in ("scaler-by-hand", "scaler-v2", "scaler-v3"):
        Model(str(image), name=name).delete_model()
    assert client.list_models()["Models"] == []


# -- framework images: inference code served by dockyard.serving ------------------------------


@pytest.mark.slow
def test_inference_py_serves_json_and_csv_and_refuses_an_accept_it_cannot_produce(
    background_server: Settings, source: Path, tmp_path: Path
) -> None:
    archive = model_archive(tmp_path / "trained", weights={"weights": [1, 10], "bias": 0.5})
    model = Model(
        image_uri="dockyard/python:3.11",
        model_data=str(archive),  # read in place by the server on this machine
        role=sagemaker.get_execution_role(),
        entry_point="inference.py",
        source_dir=str(source),
    )
    predictor = model.deploy(
        initial_instance_count=1,
        instance_type="ml.m5.large",
        serializer=JSONSerializer(),
        deserializer=JSONDeserializer(),
    )
    assert predictor.predict([[1, 2], [3, 4]]) == [21.5, 43.5]
    assert predictor.predict([2, 0]) == [2.5]

    as_csv = sagemaker.predictor.Predictor(
        predictor.endpoint_name, serializer=CSVSerializer(), deserializer=CSVDeserializer()
    )
    assert as_csv.predict([[1, 2], [0, 1]]) == [["21.5"], ["10.5"]]

    with pytest.raises(ClientError) as refused:
        predictor.predict([[1, 2]], initial_args={"Accept": "application/x-protobuf"})
    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["Error"]["Code"] == "ModelError"
    assert error["OriginalStatusCode"] == 406
    assert "application/x-protobuf" in error["OriginalMessage"]

    described = model.sagemaker_session.describe_endpoint(predictor.endpoint_name)
    assert described["EndpointStatus"] == "InService"
    env = model.sagemaker_session.sagemaker_client.describe_model(ModelName=model.name)[
        "PrimaryContainer"
    ]["Environment"]
    assert env["SAGEMAKER_SUBMIT_DIRECTORY"] == f"file://{source}"  # in place, no upload
    predictor.delete_endpoint()
    predictor.delete_model()


@pytest.mark.slow
def test_a_framework_estimator_deploys_its_training_code_as_inference_code(
    background_server: Settings, tmp_path: Path
) -> None:
    code = tmp_path / "train-code"
    code.mkdir()
    (code / "train.py").write_text(TRAIN_SCRIPT)
    est = sagemaker.estimator.Framework(
        entry_point="train.py",
        source_dir=str(code),
        image_uri="dockyard/python:3.11",
        hyperparameters={"offset": 100},
        output_path="s3://bucket/out",
    )
    est.fit(logs=False)
    model = est.create_model()
    assert isinstance(model, FrameworkModel)
    assert model.entry_point == "train.py" and model.source_dir == f"file://{code}"
    predictor = est.deploy(
        1, "ml.m5.large", serializer=JSONSerializer(), deserializer=JSONDeserializer()
    )
    assert predictor.predict([1, 2.5]) == {"shifted": [101.0, 102.5]}
    env = est.sagemaker_session.sagemaker_client.describe_model(ModelName=predictor.endpoint_name)[
        "PrimaryContainer"
    ]["Environment"]
    assert env["SAGEMAKER_PROGRAM"] == "train.py"
    assert env["SAGEMAKER_SUBMIT_DIRECTORY"] == f"file://{code}"
    predictor.delete_endpoint()


@pytest.fixture
def framework_server(
    clean_env: Path, shared_envs_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningServer]:
    """A server that counts as elsewhere (DOCKYARD_ENDPOINT_URL): code and data are uploaded."""
    settings = Settings(
        home=clean_env, port=free_port(), envs_dir=shared_envs_dir, stop_grace_seconds=2.0
    )
    running = RunningServer(settings)
    monkeypatch.setenv("DOCKYARD_ENDPOINT_URL", running.url)
    try:
        yield running
    finally:
        running.close()


@pytest.mark.slow
def test_against_a_remote_server_the_uploaded_training_code_serves(
    framework_server: RunningServer, tmp_path: Path
) -> None:
    code = tmp_path / "train-code"
    code.mkdir()
    (code / "train.py").write_text(
        TRAIN_SCRIPT.replace("return {", "import shift_helper\n    return {").replace(
            "x + model", "shift_helper.shift(x, model)"
        )
    )
    helpers = tmp_path / "helpers"
    helpers.mkdir()
    (helpers / "shift_helper.py").write_text("def shift(x, by):\n    return x + by\n")
    est = sagemaker.estimator.Framework(
        entry_point="train.py",
        source_dir=str(code),
        dependencies=[str(helpers / "shift_helper.py")],
        image_uri="dockyard/python:3.11",
        hyperparameters={"offset": -1},
    )
    est.fit(logs=False)
    archive = json.loads(
        est.latest_training_job.describe()["HyperParameters"][  # type: ignore[union-attr]
            "sagemaker_submit_directory"
        ]
    )
    assert archive.startswith("s3://") and archive.endswith("/source/sourcedir.tar.gz")
    predictor = est.deploy(
        1, "ml.m5.large", serializer=JSONSerializer(), deserializer=JSONDeserializer()
    )
    assert predictor.predict([1, 2]) == {"shifted": [0.0, 1.0]}
    env = framework_server.client("sagemaker").describe_model(ModelName=predictor.endpoint_name)[
        "PrimaryContainer"
    ]["Environment"]
    # The archive fit() uploaded (with its dependency inside) serves too: nothing uploaded again.
    assert env["SAGEMAKER_SUBMIT_DIRECTORY"] == archive
    assert archive_names(archive) == ["shift_helper.py", "train.py"]
    predictor.delete_endpoint()
