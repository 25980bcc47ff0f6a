"""Estimators: the CreateTrainingJob request they build (a pure function of the estimator and its
inputs), and notebook code running real jobs on a real server."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest

import dockyard.sdk as sagemaker
from dockyard.sdk.estimator import Estimator, Framework
from dockyard.sdk.exceptions import UnexpectedStatusException
from dockyard.sdk.pytorch import PyTorch
from dockyard.sdk.sklearn import SKLearn
from dockyard.settings import Settings
from dockyard.storage.stores import store_from_settings
from tests.conftest import RunningServer, free_port, make_image
from tests.sdk.helpers import DEFAULT_BUCKET, NAME_STAMP, archive_names

ROLE = "arn:aws:iam::111111111111:role/r"
STATUS_LINE = r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} "

# A BYOC program: shows what it was given, and fails when asked to.
PROGRAM = """
import json, os, pathlib, sys
hps = json.load(open("/opt/ml/input/config/hyperparameters.json"))
print("hyperparameters", json.dumps(hps, sort_keys=True))
data = "/opt/ml/input/data"
for name in sorted(os.listdir(data)):
    print("channel", name, sorted(os.listdir(os.path.join(data, name))))
code = "/opt/ml/code"
if os.path.isdir(code):
    print("code", sorted(str(p.relative_to(code)) for p in pathlib.Path(code).rglob("*.py")))
pathlib.Path("/opt/ml/model/seen.json").write_text(json.dumps(hps))
if "fail" in hps:
    reason = "loss diverged: lr " + hps["lr"] + " too high"
    pathlib.Path("/opt/ml/output/failure").write_text(reason)
    sys.exit(1)
if "sleep" in hps:
    import time
    time.sleep(float(hps["sleep"]))
"""


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A script-mode source folder with a nested entry point and a dependency beside it."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "train.py").write_text("print('training')\n")
    (src / "sub" / "nested.py").write_text("print('nested')\n")
    helpers = tmp_path / "helpers"
    helpers.mkdir()
    (helpers / "util.py").write_text("VALUE = 1\n")
    return src


def channel_uri(request: dict[str, Any], name: str) -> str:
    for channel in request["InputDataConfig"]:
        if channel["ChannelName"] == name:
            return str(channel["DataSource"]["S3DataSource"]["S3Uri"])
    raise AssertionError(f"no channel {name}")


# -- framework estimators: the request --------------------------------------------------------


def test_pytorch_request_json_encodes_everything_and_names_the_code(source: Path) -> None:
    estimator = PyTorch(
        entry_point="train.py",
        source_dir=str(source),
        framework_version="2.13",
        py_version="py311",
        role=sagemaker.get_execution_role(),
        instance_count=2,
        instance_type="ml.m5.large",
        hyperparameters={"epochs": 30, "lr": 0.5, "optimizer": "adam", "layers": [64, 32]},
        distribution={"torch_distributed": {"enabled": True}},
        output_path="s3://bucket/out",
        metric_definitions=[{"Name": "accuracy", "Regex": "accuracy=([0-9.]+);"}],
    )
    request = estimator.training_request({"training": "s3://bucket/moons"}, job_name="pt-1")
    assert request["HyperParameters"] == {
        "epochs": "30",
        "lr": "0.5",
        "optimizer": '"adam"',
        "layers": "[64, 32]",
        "sagemaker_torch_distributed_enabled": "true",
        "sagemaker_instance_type": '"ml.m5.large"',
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": json.dumps(f"file://{source}"),
        "sagemaker_container_log_level": "20",
        "sagemaker_job_name": '"pt-1"',
        "sagemaker_region": '"us-east-1"',
    }
    assert request["AlgorithmSpecification"] == {
        "TrainingImage": "dockyard/pytorch:2.13",
        "TrainingInputMode": "File",
        "MetricDefinitions": [{"Name": "accuracy", "Regex": "accuracy=([0-9.]+);"}],
    }
    assert request["ResourceConfig"] == {
        "InstanceCount": 2,
        "InstanceType": "ml.m5.large",
        "VolumeSizeInGB": 30,
    }
    assert request["RoleArn"] == "arn:aws:iam::000000000000:role/dockyard"
    assert request["OutputDataConfig"] == {"S3OutputPath": "s3://bucket/out"}
    assert request["InputDataConfig"] == [
        {
            "ChannelName": "training",
            "DataSource": {
                "S3DataSource": {
                    "S3DataType": "S3Prefix",
                    "S3Uri": "s3://bucket/moons",
                    "S3DataDistributionType": "FullyReplicated",
                }
            },
        }
    ]
    assert estimator.training_request(job_name="pt-1") == {
        **{k: v for k, v in request.items() if k != "InputDataConfig"}
    }


@pytest.mark.parametrize(
    ("distribution", "flags"),
    [
        (
            {"pytorchddp": {"enabled": True}},
            {"sagemaker_pytorch_ddp_enabled": "true", "sagemaker_instance_type": '"local"'},
        ),
        (
            {"mpi": {"enabled": True, "processes_per_host": 4, "custom_mpi_options": "-x A"}},
            {
                "sagemaker_mpi_enabled": "true",
                "sagemaker_mpi_num_of_processes_per_host": "4",
                "sagemaker_mpi_custom_mpi_options": '"-x A"',
            },
        ),
        (
            {"mpi": {"enabled": True}},
            {"sagemaker_mpi_enabled": "true", "sagemaker_mpi_custom_mpi_options": '""'},
        ),
        ({"parameter_server": {"enabled": True}}, {"sagemaker_parameter_server_enabled": "true"}),
        (
            {"torch_distributed": {"enabled": False}},
            {"sagemaker_torch_distributed_enabled": "false"},
        ),
        (None, {}),
    ],
)
def test_distribution_becomes_the_toolkit_launcher_flags(
    source: Path, distribution: dict[str, Any] | None, flags: dict[str, str]
) -> None:
    estimator = PyTorch("train.py", "2.13", source_dir=str(source), distribution=distribution)
    hyperparameters = estimator.training_request(job_name="d")["HyperParameters"]
    assert {k: v for k, v in hyperparameters.items() if k not in SCRIPT_MODE} == flags


SCRIPT_MODE = {
    "sagemaker_program",
    "sagemaker_submit_directory",
    "sagemaker_container_log_level",
    "sagemaker_job_name",
    "sagemaker_region",
}


@pytest.mark.parametrize(
    ("distribution", "message"),
    [
        ({"smdistributed": {"dataparallel": {"enabled": True}}}, "torch_distributed"),
        ({"horovod": {"enabled": True}}, "unknown distribution strategy horovod"),
    ],
)
def test_unsupported_distributions_fail_at_construction(
    source: Path, distribution: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        PyTorch("train.py", "2.13", source_dir=str(source), distribution=distribution)


def test_entry_point_is_relative_to_source_dir(source: Path) -> None:
    estimator = PyTorch("sub/nested.py", "2.13", source_dir=str(source))
    hyperparameters = estimator.training_request(job_name="n")["HyperParameters"]
    assert hyperparameters["sagemaker_program"] == '"sub/nested.py"'


def test_entry_point_without_source_dir_uses_its_own_folder(
    source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(source.parent)
    estimator = PyTorch("src/sub/nested.py", "2.13")
    hyperparameters = estimator.training_request(job_name="n")["HyperParameters"]
    assert hyperparameters["sagemaker_program"] == '"nested.py"'
    assert hyperparameters["sagemaker_submit_directory"] == json.dumps(f"file://{source}/sub")


@pytest.mark.parametrize(
    ("entry_point", "source_dir", "message"),
    [
        ("missing.py", "src", 'No file named "missing.py" was found in directory'),
        ("src/missing.py", None, 'entry_point "src/missing.py" is not a file'),
        ("train.py", "nowhere", 'source_dir "nowhere" is not a folder'),
    ],
)
def test_missing_code_is_a_value_error_before_any_request(
    source: Path,
    monkeypatch: pytest.MonkeyPatch,
    entry_point: str,
    source_dir: str | None,
    message: str,
) -> None:
    monkeypatch.chdir(source.parent)
    # Nothing listens here: reaching the server would be a connection error, not ValueError.
    monkeypatch.setenv("DOCKYARD_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    estimator = PyTorch(entry_point, "2.13", source_dir=source_dir, output_path="s3://b/o")
    with pytest.raises(ValueError, match=message):
        estimator.fit("s3://bucket/data")


def test_dependencies_travel_with_the_source_as_one_archive(source: Path) -> None:
    estimator = PyTorch(
        "train.py",
        "2.13",
        source_dir=str(source),
        dependencies=[str(source.parent / "helpers")],
        output_path="s3://models/out",
    )
    hyperparameters = estimator.training_request(job_name="deps-1")["HyperParameters"]
    uri = json.loads(hyperparameters["sagemaker_submit_directory"])
    assert uri == "s3://models/deps-1/source/sourcedir.tar.gz"
    assert archive_names(uri) == [
        "helpers",
        "helpers/util.py",
        "sub",
        "sub/nested.py",
        "train.py",
    ]


def test_code_location_names_where_the_archive_goes(source: Path) -> None:
    estimator = PyTorch(
        "train.py",
        "2.13",
        source_dir=str(source),
        dependencies=[str(source.parent / "helpers" / "util.py")],
        code_location="s3://code/team/",
        output_path="s3://models/out",
    )
    hyperparameters = estimator.training_request(job_name="deps-2")["HyperParameters"]
    uri = json.loads(hyperparameters["sagemaker_submit_directory"])
    assert uri == "s3://code/team/deps-2/source/sourcedir.tar.gz"
    assert "util.py" in archive_names(uri)


def test_a_source_dir_in_s3_is_used_as_is() -> None:
    estimator = PyTorch("train.py", "2.13", source_dir="s3://code/sourcedir.tar.gz")
    hyperparameters = estimator.training_request(job_name="s3src")["HyperParameters"]
    assert hyperparameters["sagemaker_submit_directory"] == '"s3://code/sourcedir.tar.gz"'


def test_against_a_remote_server_code_and_local_data_are_uploaded(
    source: Path, server: RunningServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server named by its URL: the SDK uploads through its S3 API instead of naming files.
    monkeypatch.setenv("DOCKYARD_ENDPOINT_URL", server.url)
    (source.parent / "data").mkdir()
    (source.parent / "data" / "a.csv").write_text("1\n")
    (source.parent / "data2").mkdir()
    (source.parent / "data2" / "b.csv").write_text("2\n")
    estimator = PyTorch("train.py", "2.13", source_dir=str(source))
    request = estimator.training_request(
        {
            "train": str(source.parent / "data"),
            "train2": str(source.parent / "data2"),
            "one": f"file://{source.parent}/data/a.csv",
        },
        job_name="remote-1",
    )
    hyperparameters = request["HyperParameters"]
    code = json.loads(hyperparameters["sagemaker_submit_directory"])
    assert code == f"s3://{DEFAULT_BUCKET}/remote-1/source/sourcedir.tar.gz"
    assert archive_names(code) == ["sub", "sub/nested.py", "train.py"]
    # A folder's prefix ends with `/`, so channel train does not take in train2's objects too.
    assert channel_uri(request, "train") == f"s3://{DEFAULT_BUCKET}/remote-1/input/train/"
    assert channel_uri(request, "train2") == f"s3://{DEFAULT_BUCKET}/remote-1/input/train2/"
    assert channel_uri(request, "one") == f"s3://{DEFAULT_BUCKET}/remote-1/input/one/a.csv"
    assert request["OutputDataConfig"] == {"S3OutputPath": f"s3://{DEFAULT_BUCKET}/"}


def test_sklearn_uses_the_sklearn_image_on_one_host(source: Path) -> None:
    estimator = SKLearn(
        entry_point="train.py",
        source_dir=str(source),
        framework_version="1.2-1",
        hyperparameters={"n-estimators": 50, "max-depth": 4},
    )
    request = estimator.training_request(job_name="sk-1")
    assert request["AlgorithmSpecification"]["TrainingImage"] == "dockyard/sklearn:1.2-1"
    assert request["HyperParameters"]["n-estimators"] == "50"
    assert request["ResourceConfig"]["InstanceCount"] == 1
    with pytest.raises(ValueError, match="does not train across hosts"):
        SKLearn("train.py", "1.2-1", source_dir=str(source), instance_count=2)
    with pytest.raises(ValueError, match="py3"):
        SKLearn("train.py", "1.2-1", "py2", source_dir=str(source))


def test_framework_needs_an_image_or_a_framework_version(source: Path) -> None:
    generic = Framework("train.py", str(source), framework="xgboost", framework_version="1.7-1")
    assert generic.training_image_uri() == "dockyard/xgboost:1.7-1"
    own = PyTorch("train.py", source_dir=str(source), image_uri=str(source.parent / "img"))
    assert own.training_image_uri() == str(source.parent / "img")
    with pytest.raises(ValueError, match="give framework_version"):
        PyTorch("train.py", source_dir=str(source))
    with pytest.raises(ValueError, match=r"dockyard/<framework>:<framework_version>"):
        Framework("train.py", str(source))


def test_framework_attach_parameters_come_back_from_the_description(source: Path) -> None:
    estimator = PyTorch(
        "sub/nested.py",
        "2.13",
        source_dir=str(source),
        hyperparameters={"epochs": 3, "name": "x"},
        instance_count=2,
        distribution={"torch_distributed": {"enabled": True}},
        output_path="s3://bucket/out",
    )
    request = estimator.training_request(job_name="pt-2024-01-02-03-04-05-678")
    params = PyTorch._init_params_from_description(request, "model")
    rebuilt = PyTorch(**params)
    assert rebuilt.entry_point == "sub/nested.py"
    assert rebuilt.source_dir == str(source)
    assert rebuilt.hyperparameters() == estimator.hyperparameters()
    assert rebuilt.distribution == {"torch_distributed": {"enabled": True}}
    assert rebuilt.framework_version == "2.13"
    assert rebuilt.base_job_name == "pt"
    assert rebuilt.training_request(job_name="again")["HyperParameters"] == {
        **request["HyperParameters"],
        "sagemaker_job_name": '"again"',
    }


# -- the generic Estimator: the request -------------------------------------------------------


def test_estimator_sends_str_of_each_hyperparameter() -> None:
    estimator = Estimator("img:1", ROLE, hyperparameters={"flag": True})
    estimator.set_hyperparameters(epochs=3, lr=0.1, layers=[1, 2], name="adam")
    assert estimator.hyperparameters() == {
        "flag": True,
        "epochs": 3,
        "lr": 0.1,
        "layers": [1, 2],
        "name": "adam",
    }
    request = estimator.training_request(job_name="hp")
    assert request["HyperParameters"] == {
        "flag": "True",
        "epochs": "3",
        "lr": "0.1",
        "layers": "[1, 2]",
        "name": "adam",
    }


def test_estimator_with_a_source_dir_json_encodes_set_hyperparameters(source: Path) -> None:
    estimator = Estimator("img:1", entry_point="train.py", source_dir=str(source))
    estimator.set_hyperparameters(name="adam", epochs=3)
    hyperparameters = estimator.training_request(job_name="sm")["HyperParameters"]
    assert hyperparameters["name"] == '"adam"'
    assert hyperparameters["epochs"] == "3"
    assert hyperparameters["sagemaker_submit_directory"] == json.dumps(f"file://{source}")


def test_estimator_defaults_name_role_resources_and_output() -> None:
    estimator = Estimator("registry.example:5000/team/my-algo:7")
    request = estimator.training_request()
    assert re.fullmatch(f"my-algo-{NAME_STAMP}", request["TrainingJobName"])
    assert request["RoleArn"] == "arn:aws:iam::000000000000:role/dockyard"
    assert request["ResourceConfig"] == {
        "InstanceCount": 1,
        "InstanceType": "local",
        "VolumeSizeInGB": 30,
    }
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 86400}
    assert request["OutputDataConfig"] == {"S3OutputPath": f"s3://{DEFAULT_BUCKET}/"}
    assert "HyperParameters" not in request and "InputDataConfig" not in request
    named = Estimator("img:1", "MyRole", base_job_name="exp").training_request()
    assert re.fullmatch(f"exp-{NAME_STAMP}", named["TrainingJobName"])
    assert named["RoleArn"] == "arn:aws:iam::000000000000:role/MyRole"


def test_image_folders_become_absolute_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = make_image(tmp_path / "images" / "echo", PROGRAM)
    monkeypatch.chdir(tmp_path)
    request = Estimator("images/echo").training_request()
    assert request["AlgorithmSpecification"]["TrainingImage"] == str(image)
    assert request["TrainingJobName"].startswith("echo-")


def test_inputs_in_every_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    estimator = Estimator("img:1", input_mode="File")
    single = estimator.training_request("s3://b/train", job_name="i")
    assert [c["ChannelName"] for c in single["InputDataConfig"]] == ["training"]
    piped = estimator.training_request(
        sagemaker.TrainingInput("s3://b/t", input_mode="Pipe", compression="Gzip"), job_name="i"
    )
    assert piped["AlgorithmSpecification"]["TrainingInputMode"] == "Pipe"
    assert piped["InputDataConfig"][0]["InputMode"] == "Pipe"
    assert piped["InputDataConfig"][0]["CompressionType"] == "Gzip"
    several = estimator.training_request(
        {
            "train": sagemaker.TrainingInput("data", distribution="ShardedByS3Key"),
            "test": "file://data",
        },
        job_name="i",
    )
    assert channel_uri(several, "train") == f"file://{tmp_path}/data"
    assert channel_uri(several, "test") == f"file://{tmp_path}/data"
    source = several["InputDataConfig"][0]["DataSource"]["S3DataSource"]
    assert source["S3DataDistributionType"] == "ShardedByS3Key"
    assert several["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    with pytest.raises(ValueError, match="does not exist"):
        estimator.training_request({"train": "missing"}, job_name="i")
    with pytest.raises(TypeError, match="FileSystemInput"):
        estimator.training_request(42, job_name="i")  # type: ignore[arg-type]


def test_every_option_lands_in_the_request() -> None:
    estimator = Estimator(
        "img:1",
        ROLE,
        2,
        "ml.c5.xlarge",
        volume_size=50,
        max_run=600,
        use_spot_instances=True,
        max_wait=900,
        output_path="s3://b/o",
        tags={"team": "ml"},
        model_uri="s3://b/model.tar.gz",
        metric_definitions=[{"Name": "loss", "Regex": "loss=([0-9.]+)"}],
        checkpoint_s3_uri="s3://b/ckpt",
        checkpoint_local_path="/opt/ml/checkpoints",
        environment={"MODE": "fast"},
        container_entry_point=["python3", "-m", "algo"],
        container_arguments=["--fast"],
        enable_network_isolation=True,
        encrypt_inter_container_traffic=True,
        max_retry_attempts=2,
        keep_alive_period_in_seconds=60,
        disable_output_compression=True,
    )
    request = estimator.training_request(job_name="all")
    assert request["AlgorithmSpecification"]["ContainerEntrypoint"] == ["python3", "-m", "algo"]
    assert request["AlgorithmSpecification"]["ContainerArguments"] == ["--fast"]
    assert request["StoppingCondition"] == {"MaxRuntimeInSeconds": 600, "MaxWaitTimeInSeconds": 900}
    assert request["ResourceConfig"]["KeepAlivePeriodInSeconds"] == 60
    assert request["OutputDataConfig"] == {"S3OutputPath": "s3://b/o", "CompressionType": "NONE"}
    assert request["Tags"] == [{"Key": "team", "Value": "ml"}]
    assert request["CheckpointConfig"] == {
        "S3Uri": "s3://b/ckpt",
        "LocalPath": "/opt/ml/checkpoints",
    }
    assert request["Environment"] == {"MODE": "fast"}
    assert request["RetryStrategy"] == {"MaximumRetryAttempts": 2}
    assert request["EnableNetworkIsolation"] is True
    assert request["EnableInterContainerTrafficEncryption"] is True
    assert request["EnableManagedSpotTraining"] is True
    (model,) = request["InputDataConfig"]
    assert model["ChannelName"] == "model"
    assert model["ContentType"] == "application/x-sagemaker-model"
    assert model["InputMode"] == "File"
    with pytest.raises(ValueError, match="already have a channel named model"):
        estimator.training_request({"model": "s3://b/m"}, job_name="all")


def test_local_gpu_is_accepted() -> None:
    # The whole machine with its GPUs; on one without, the server runs it on the CPU (or holds
    # or fails it: DOCKYARD_GPU_SHORTAGE).
    assert Estimator("img:1", ROLE, 1, "local_gpu").instance_type == "local_gpu"


def test_no_job_yet_means_no_model_data() -> None:
    with pytest.raises(ValueError, match="call fit"):
        _ = Estimator("img:1").model_data


# -- real jobs --------------------------------------------------------------------------------


@pytest.fixture
def image(tmp_path: Path) -> Path:
    return make_image(tmp_path / "images" / "echo", PROGRAM)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.csv").write_text("1,2\n")
    (folder / "b.csv").write_text("3,4\n")
    return folder


def seen_hyperparameters(model_data: str, tmp_path: Path) -> dict[str, str]:
    bucket, _, key = model_data.removeprefix("s3://").partition("/")
    archive = tmp_path / "model.tar.gz"
    store_from_settings(Settings()).get_file(bucket, key, archive)
    with tarfile.open(archive) as tar:
        member = tar.extractfile("seen.json")
        assert member is not None
        return dict(json.load(member))


@pytest.mark.slow
def test_notebook_byoc_fit_streams_the_job_and_attach_finds_it(
    sdk_server: RunningServer,
    image: Path,
    data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    session = sagemaker.Session()
    upload_uri = session.upload_data(str(data), key_prefix="notebook/train")
    est = sagemaker.estimator.Estimator(
        image_uri=str(image),
        role="arn:aws:iam::111111111111:role/r",
        instance_count=1,
        instance_type="ml.m5.large",
        output_path="s3://bucket/out",
    )
    est.set_hyperparameters(epochs=3, lr=0.1)
    est.fit({"train": sagemaker.inputs.TrainingInput(upload_uri)})

    name = est.latest_training_job.name  # type: ignore[union-attr]
    assert re.fullmatch(f"echo-{NAME_STAMP}", name)
    assert est.model_data == f"s3://bucket/out/{name}/output/model.tar.gz"
    assert seen_hyperparameters(est.model_data, tmp_path) == {"epochs": "3", "lr": "0.1"}
    out = capsys.readouterr().out
    assert re.search(STATUS_LINE + "Starting - Starting the training job$", out, re.M)
    assert re.search(STATUS_LINE + "Training - ", out, re.M)
    assert re.search(STATUS_LINE + "Completed - Training job completed$", out, re.M)
    assert 'hyperparameters {"epochs": "3", "lr": "0.1"}' in out
    assert "channel train ['a.csv', 'b.csv']" in out
    assert out.index("Starting - ") < out.index("hyperparameters {") < out.index("Completed - ")
    assert re.search(r"^Training seconds: \d+$", out, re.M)
    assert re.search(r"^Billable seconds: \d+$", out, re.M)

    attached = sagemaker.estimator.Estimator.attach(name)
    assert attached.model_data == est.model_data
    assert attached.image_uri == str(image)
    assert attached.hyperparameters() == {"epochs": "3", "lr": "0.1"}
    assert attached.base_job_name == "echo"
    assert attached.instance_type == "ml.m5.large"
    assert attached.output_path == "s3://bucket/out"
    attached.logs()
    assert 'hyperparameters {"epochs": "3", "lr": "0.1"}' in capsys.readouterr().out


@pytest.mark.slow
def test_v1_seed_code_runs_with_deprecation_warnings(
    sdk_server: RunningServer, image: Path, data: Path, tmp_path: Path
) -> None:
    session = sagemaker.Session()
    with pytest.deprecated_call() as caught:
        est = sagemaker.estimator.Estimator(
            image_name=str(image),
            role="arn:aws:iam::111111111111:role/r",
            train_instance_count=1,
            train_instance_type="ml.m5.large",
            train_max_run=600,
            output_path="s3://bucket/v1",
            sagemaker_session=session,
        )
        est.set_hyperparameters(epochs=1)
        est.fit({"train": sagemaker.s3_input(session.upload_data(str(data)))}, logs=False)
    assert len(caught) == 5
    assert seen_hyperparameters(est.model_data, tmp_path) == {"epochs": "1"}


@pytest.mark.slow
def test_a_failing_program_raises_unexpected_status_with_the_reason(
    sdk_server: RunningServer, image: Path
) -> None:
    est = sagemaker.estimator.Estimator(str(image), hyperparameters={"fail": 1, "lr": 9})
    with pytest.raises(UnexpectedStatusException) as raised:
        est.fit(job_name="fails-1", logs="None")
    assert str(raised.value) == (
        "Error for Training job fails-1: Failed. Reason: loss diverged: lr 9 too high"
    )
    assert isinstance(raised.value, ValueError)
    assert raised.value.actual_status == "Failed"
    assert raised.value.allowed_statuses == ["Completed", "Stopped"]


@pytest.mark.slow
def test_fit_without_waiting_then_wait_and_stop(
    sdk_server: RunningServer, image: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    est = sagemaker.estimator.Estimator(str(image))
    est.fit(wait=False, job_name="later-1")
    assert capsys.readouterr().out == ""
    est.latest_training_job.wait(logs=False)  # type: ignore[union-attr]
    out = capsys.readouterr().out
    assert "Completed - Training job completed" in out and "hyperparameters" not in out

    est.set_hyperparameters(sleep=60)
    est.fit(wait=False, job_name="stopped-1")
    est.latest_training_job.stop()  # type: ignore[union-attr]
    with pytest.warns(UserWarning, match="ended with status 'Stopped'"):
        est.latest_training_job.wait()  # type: ignore[union-attr]


@pytest.mark.slow
def test_script_mode_code_and_dependencies_reach_opt_ml_code(
    sdk_server: RunningServer, image: Path, source: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    est = sagemaker.estimator.Estimator(
        str(image),
        entry_point="train.py",
        source_dir=str(source),
        dependencies=[str(source.parent / "helpers")],
    )
    est.fit(job_name="code-1")
    out = capsys.readouterr().out
    assert "code ['helpers/util.py', 'sub/nested.py', 'train.py']" in out
    assert '"sagemaker_program": "\\"train.py\\""' in out


@pytest.mark.slow
def test_a_local_server_reads_local_data_and_code_in_place(
    background_server: Settings,
    image: Path,
    data: Path,
    source: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    est = sagemaker.estimator.Estimator(
        str(image), entry_point="train.py", source_dir=str(source), output_path="s3://bucket/o"
    )
    est.fit({"train": str(data)}, job_name="in-place-1")
    assert "channel train ['a.csv', 'b.csv']" in capsys.readouterr().out
    described = est.latest_training_job.describe()  # type: ignore[union-attr]
    assert described["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3Uri"] == (
        f"file://{data}"
    )
    assert json.loads(described["HyperParameters"]["sagemaker_submit_directory"]) == (
        f"file://{source}"
    )
    store = store_from_settings(background_server)
    assert store.list_buckets() == ["bucket"]  # nothing uploaded, only the model written
