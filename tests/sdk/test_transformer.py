"""Transformer: the CreateTransformJob request it builds (a pure function of the transformer and
its arguments), and batch transform jobs of real models on a real server."""

from __future__ import annotations

import json
import re
import tarfile
import time
from pathlib import Path

import pytest

import dockyard.sdk as sagemaker
from dockyard.client.logs import TRANSFORM_LOG_GROUP, LogTail
from dockyard.sdk.exceptions import UnexpectedStatusException
from dockyard.sdk.model import Model
from dockyard.sdk.transformer import Transformer
from dockyard.settings import Settings
from dockyard.storage.stores import store_from_settings
from tests.conftest import RunningServer, make_image
from tests.sdk.helpers import DEFAULT_BUCKET, HTTP_CONTAINER, NAME_STAMP

# Trains a scale; serves CSV records (one or many per request) as one JSON answer per record,
# one per line; SLEEP makes every request slow (to stop a job while it runs).
TRAIN_AND_SERVE = (
    r"""
import json, os, pathlib, sys, time
if sys.argv[1] == "train":
    hps = json.load(open("/opt/ml/input/config/hyperparameters.json"))
    pathlib.Path("/opt/ml/model/model.json").write_text(json.dumps({"scale": float(hps["scale"])}))
    sys.exit(0)
model = json.load(open("/opt/ml/model/model.json"))
"""
    + HTTP_CONTAINER
    + r"""
class Handler(Container):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        time.sleep(float(os.environ.get("SLEEP", "0")))
        lines = [line for line in body.decode().splitlines() if line]
        out = [json.dumps({"sum": sum(float(x) for x in line.split(",")) * model["scale"]})
               for line in lines]
        self.reply(200, "\n".join(out).encode(), "application/jsonlines")
print("serving with scale", model["scale"], flush=True)
serve(Handler)
"""
)


# -- the request ------------------------------------------------------------------------------


def test_request_carries_every_option_as_the_sdk_sends_it() -> None:
    transformer = Transformer(
        "linear-model",
        instance_count=2,
        instance_type="ml.m5.large",
        strategy="MultiRecord",
        assemble_with="Line",
        output_path="s3://bucket/predictions",
        output_kms_key="alias/kms",
        accept="text/csv",
        max_concurrent_transforms=4,
        max_payload=1,
        tags=[{"Key": "team", "Value": "ml"}],
        env={"LOG": "debug"},
        base_transform_job_name="nightly",
    )
    request = transformer.transform_request(
        "s3://bucket/batch/",
        content_type="text/csv",
        compression_type="None",
        split_type="Line",
        input_filter="$[1:]",
        output_filter="$[0,-1]",
        join_source="Input",
        model_client_config={"InvocationsTimeoutInSeconds": 30},
    )
    name = request.pop("TransformJobName")
    assert re.fullmatch(f"nightly-{NAME_STAMP}", name)
    assert request == {
        "ModelName": "linear-model",
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/batch/"}
            },
            "ContentType": "text/csv",
            "CompressionType": "None",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": "s3://bucket/predictions",
            "AssembleWith": "Line",
            "Accept": "text/csv",
        },
        "TransformResources": {"InstanceCount": 2, "InstanceType": "ml.m5.large"},
        "BatchStrategy": "MultiRecord",
        "MaxConcurrentTransforms": 4,
        "MaxPayloadInMB": 1,
        "Environment": {"LOG": "debug"},
        "Tags": [{"Key": "team", "Value": "ml"}],
        "DataProcessing": {
            "InputFilter": "$[1:]",
            "OutputFilter": "$[0,-1]",
            "JoinSource": "Input",
        },
        "ModelClientConfig": {"InvocationsTimeoutInSeconds": 30},
    }


def test_a_bare_request_leaves_the_options_out_and_outputs_per_job() -> None:
    transformer = Transformer("m", 1, "ml.m5.large")
    first = transformer.transform_request("s3://bucket/in", job_name="job-a")
    assert first == {
        "TransformJobName": "job-a",
        "ModelName": "m",
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/in"}}
        },
        "TransformOutput": {"S3OutputPath": f"s3://{DEFAULT_BUCKET}/job-a"},
        "TransformResources": {"InstanceCount": 1, "InstanceType": "ml.m5.large"},
    }
    second = transformer.transform_request("s3://bucket/in", job_name="job-b")
    assert second["TransformOutput"]["S3OutputPath"] == f"s3://{DEFAULT_BUCKET}/job-b"
    fixed = Transformer("m", 1, "ml.m5.large", output_path="s3://bucket/out")
    fixed.transform_request("s3://bucket/in", job_name="job-c")
    assert fixed.transform_request("s3://b/in", job_name="job-d")["TransformOutput"] == {
        "S3OutputPath": "s3://bucket/out"
    }


def test_local_data_is_read_in_place_or_uploaded_for_a_remote_server(
    tmp_path: Path, server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "batch"
    data.mkdir()
    (data / "a.csv").write_text("1,2\n")
    local = Transformer("m", 1, "local").transform_request(str(data), job_name="in-place")
    assert local["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == f"file://{data}"
    monkeypatch.setenv("DOCKYARD_ENDPOINT_URL", server.url)  # uploads through its S3 API
    remote = Transformer("m", 1, "local").transform_request(str(data), job_name="uploaded")
    uri = remote["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    assert uri == f"s3://{DEFAULT_BUCKET}/data/uploaded/"
    store = store_from_settings(Settings())
    assert store.get_bytes(DEFAULT_BUCKET, "data/uploaded/a.csv") == b"1,2\n"


def test_a_remote_server_is_not_sent_a_local_output_folder(
    tmp_path: Path, server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It would write a folder of that name on its own machine, not the caller's."""
    local = Transformer("m", 1, "local", output_path=str(tmp_path / "out"))
    request = local.transform_request("s3://b/in", job_name="here")
    assert request["TransformOutput"]["S3OutputPath"] == f"file://{tmp_path / 'out'}"
    monkeypatch.setenv("DOCKYARD_ENDPOINT_URL", server.url)
    remote = Transformer("m", 1, "local", output_path=str(tmp_path / "out"))
    with pytest.raises(ValueError, match=r"is a local folder, which the server at http://"):
        remote.transform_request("s3://b/in", job_name="elsewhere")


def test_no_job_yet_and_data_capture_are_refused() -> None:
    transformer = Transformer("m", 1, "local")
    with pytest.raises(ValueError, match="No transform job available"):
        transformer.wait()
    with pytest.raises(ValueError, match="data capture"):
        transformer.transform_request("s3://b/in", job_name="j", batch_data_capture_config={})


# -- real transform jobs ----------------------------------------------------------------------


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return make_image(tmp_path / "images" / "summer", TRAIN_AND_SERVE)


@pytest.fixture
def batch(tmp_path: Path) -> Path:
    folder = tmp_path / "batch"
    folder.mkdir()
    (folder / "a.csv").write_text("".join(f"{i},{i}\n" for i in range(50)))
    (folder / "b.csv").write_text("1,2\n3,4\n")
    return folder


def scale_model(folder: Path, scale: float) -> Path:
    """A model.tar.gz as the image's training writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(json.dumps({"scale": scale}))
    archive = folder / "model.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder / "model.json", arcname="model.json")
    return archive


def outputs(uri: str) -> dict[str, list[dict[str, float]]]:
    """The `.out` objects under an s3:// output path, each as its JSON lines."""
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    store = store_from_settings(Settings())
    found = {}
    for info in store.list_objects(bucket, prefix):
        text = store.get_bytes(bucket, info.key).decode()
        found[info.key.removeprefix(prefix).lstrip("/")] = [
            json.loads(line) for line in text.splitlines() if line
        ]
    return found


@pytest.mark.slow
def test_estimator_transformer_scores_every_record_in_input_order(
    sdk_server: RunningServer, image: Path, batch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    est = sagemaker.estimator.Estimator(str(image), hyperparameters={"scale": 2})
    est.fit(logs=False)
    transformer = est.transformer(
        instance_count=1,
        instance_type="ml.m5.large",
        strategy="MultiRecord",
        assemble_with="Line",
        accept="application/jsonlines",
        max_concurrent_transforms=2,
        max_payload=1,
    )
    assert re.fullmatch(f"summer-{NAME_STAMP}", transformer.model_name)
    transformer.transform(str(batch), content_type="text/csv", split_type="Line")
    job = transformer.latest_transform_job
    assert job is not None
    assert re.fullmatch(f"summer-{NAME_STAMP}", job.name)
    described = job.describe()
    assert described["TransformJobStatus"] == "Completed"
    assert described["ModelName"] == transformer.model_name
    assert "serving with scale 2.0" in capsys.readouterr().out  # the instance's log
    assert transformer.output_path == f"s3://{DEFAULT_BUCKET}/{job.name}"
    assert outputs(transformer.output_path) == {
        "a.csv.out": [{"sum": 4.0 * i} for i in range(50)],
        "b.csv.out": [{"sum": 6.0}, {"sum": 14.0}],
    }
    attached = Transformer.attach(job.name)
    assert attached.model_name == transformer.model_name
    assert attached.strategy == "MultiRecord" and attached.assemble_with == "Line"
    attached.wait(logs=False)


@pytest.mark.slow
def test_model_transformer_with_a_failing_record_raises_with_the_reason(
    sdk_server: RunningServer, image: Path, tmp_path: Path
) -> None:
    archive = scale_model(tmp_path / "model", 1)
    too_big = tmp_path / "big"
    too_big.mkdir()
    (too_big / "huge.csv").write_text("1," * 700_000 + "1\n")  # one 1.4 MB record
    transformer = Model(str(image), str(archive)).transformer(
        1, "ml.m5.large", strategy="SingleRecord", max_payload=1
    )
    with pytest.raises(UnexpectedStatusException) as raised:
        transformer.transform(str(too_big), content_type="text/csv", split_type="Line", logs=False)
    job = transformer.latest_transform_job
    assert job is not None
    assert str(raised.value).startswith(f"Error for Transform job {job.name}: Failed. Reason: ")
    assert raised.value.actual_status == "Failed"


@pytest.mark.slow
def test_a_transform_job_started_without_waiting_can_be_stopped(
    sdk_server: RunningServer, image: Path, batch: Path, tmp_path: Path
) -> None:
    archive = scale_model(tmp_path / "model", 1)
    model = Model(str(image), str(archive), env={"SLEEP": "2"}, name="slow-model")
    transformer = model.transformer(1, "ml.m5.large", strategy="SingleRecord")
    transformer.transform(str(batch), content_type="text/csv", split_type="Line", wait=False)
    job = transformer.latest_transform_job
    assert job is not None
    # Stopped once its instance serves (the log says so), with 52 records of 2 s each to go.
    tail = LogTail(transformer.sagemaker_session.client, TRANSFORM_LOG_GROUP, job.name)
    deadline = time.monotonic() + 30
    while not any("serving with scale" in line for _, _, line in tail.poll()):
        assert time.monotonic() < deadline, "the instance never started serving"
        time.sleep(0.05)
    assert job.describe()["TransformJobStatus"] == "InProgress"
    with pytest.warns(UserWarning, match="ended with status 'Stopped'"):
        transformer.stop_transform_job()
    assert job.describe()["TransformJobStatus"] == "Stopped"
    transformer.delete_model()
    assert sdk_server.client("sagemaker").list_models()["Models"] == []
