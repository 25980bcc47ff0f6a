"""Script mode on framework environments: the real sagemaker-training toolkit runs the user's
train.py exactly as a SageMaker framework container would."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.settings import Settings
from tests.conftest import (
    RunningServer,
    free_port,
    model_artifacts,
    tiny_wheel,
    training_request,
    wait_for_job,
)

pytestmark = pytest.mark.slow

TOOLKIT_SCRIPT = """
import json, os, pathlib, sys
from sagemaker_training import environment

env = environment.Environment()
seen = {
    "argv": sys.argv[1:],
    "hyperparameters": env.hyperparameters,
    "channel_input_dirs": env.channel_input_dirs,
    "model_dir": env.model_dir,
    "SM_HPS": json.loads(os.environ["SM_HPS"]),
    "SM_CHANNEL_TRAINING": os.environ["SM_CHANNEL_TRAINING"],
    "files": sorted(os.listdir(env.channel_input_dirs["training"])),
}
pathlib.Path(env.model_dir, "seen.json").write_text(json.dumps(seen))
print("trained with", sys.argv[1:])
"""

LEGACY_SCRIPT = """
import json, pathlib
import sagemaker_containers

env = sagemaker_containers.training_env()
pathlib.Path(env.model_dir, "legacy.json").write_text(
    json.dumps({"hyperparameters": env.hyperparameters, "channels": env.channel_input_dirs})
)
"""

FAILING_SCRIPT = """
def check(lr):
    if lr < 0:
        raise ValueError(f"learning rate {lr} must not be negative")

check(-1.0)
"""


@pytest.fixture
def framework_server(clean_env: Path, shared_envs_dir: Path) -> Iterator[RunningServer]:
    settings = Settings(
        home=clean_env, port=free_port(), envs_dir=shared_envs_dir, stop_grace_seconds=2.0
    )
    running = RunningServer(settings)
    try:
        yield running
    finally:
        running.close()


def script_job(
    name: str,
    source: Path,
    image: str = "dockyard/python:3.11",
    entry: str = "train.py",
    **hyperparameters: str,
) -> dict[str, Any]:
    hps = {
        **hyperparameters,
        "sagemaker_program": json.dumps(entry),
        "sagemaker_submit_directory": json.dumps(f"file://{source}"),
        "sagemaker_container_log_level": "20",
        "sagemaker_job_name": json.dumps(name),
        "sagemaker_region": '"us-east-1"',
    }
    request = training_request(name, Path("/unused"), HyperParameters=hps)
    request["AlgorithmSpecification"]["TrainingImage"] = image
    return request


def _data(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    (data / "part-0.csv").write_text("1,2\n")
    return data


def _model_file(server: RunningServer, job: str, name: str) -> Any:
    return json.loads(model_artifacts(server, job)[name])


def _with_training_channel(request: dict[str, Any], data: Path) -> dict[str, Any]:
    request["InputDataConfig"] = [
        {
            "ChannelName": "training",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"file://{data}"}},
        }
    ]
    return request


def test_toolkit_script_runs_unchanged_and_hyperparameters_follow_the_table(
    framework_server: RunningServer, tmp_path: Path
) -> None:
    """Each row of the reference's §2.5 table: JSON-decoded values, `str()` rendering, dicts as
    k=v, single-character keys with one dash, sorted keys."""
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(TOOLKIT_SCRIPT)
    hps = {
        "epochs": "10",
        "lr": "0.1",
        "use_cuda": "true",
        "layers": "[64, 32]",
        "opt": '{"name": "adam"}',
        "b": "2",
        "word": "adam",
        "flag": "True",
        "quoted": '"adam"',
    }
    request = _with_training_channel(script_job("hp-table", source, **hps), _data(tmp_path))
    sagemaker = framework_server.client("sagemaker")
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, "hp-table", deadline_seconds=900)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    seen = _model_file(framework_server, "hp-table", "seen.json")
    assert seen["argv"] == [
        "-b", "2", "--epochs", "10", "--flag", "True", "--layers", "[64, 32]", "--lr", "0.1",
        "--opt", "name=adam", "--quoted", "adam", "--use_cuda", "True", "--word", "adam",
    ]  # fmt: skip
    assert seen["hyperparameters"] == {
        "epochs": 10,
        "lr": 0.1,
        "use_cuda": True,
        "layers": [64, 32],
        "opt": {"name": "adam"},
        "b": 2,
        "word": "adam",
        "flag": "True",
        "quoted": "adam",
    }
    assert seen["SM_HPS"] == seen["hyperparameters"]
    assert seen["channel_input_dirs"] == {"training": "/opt/ml/input/data/training"}
    assert seen["SM_CHANNEL_TRAINING"] == "/opt/ml/input/data/training"
    assert seen["files"] == ["part-0.csv"]
    assert seen["model_dir"] == "/opt/ml/model"


def test_legacy_sagemaker_containers_script(
    framework_server: RunningServer, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(LEGACY_SCRIPT)
    request = _with_training_channel(script_job("legacy", source, epochs="3"), _data(tmp_path))
    sagemaker = framework_server.client("sagemaker")
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, "legacy", deadline_seconds=900)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    seen = _model_file(framework_server, "legacy", "legacy.json")
    assert seen == {
        "hyperparameters": {"epochs": 3},
        "channels": {"training": "/opt/ml/input/data/training"},
    }


def test_a_failing_script_reason_has_the_exception_and_last_frame(
    framework_server: RunningServer, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(FAILING_SCRIPT)
    sagemaker = framework_server.client("sagemaker")
    sagemaker.create_training_job(**script_job("fails-in-script", source))
    described = wait_for_job(sagemaker, "fails-in-script", deadline_seconds=900)
    assert described["TrainingJobStatus"] == "Failed"
    reason = described["FailureReason"]
    assert "ValueError: learning rate -1.0 must not be negative" in reason
    assert 'File "/opt/ml/code/train.py", line 4, in check' in reason
    assert len(reason) <= 1024


def _downloading_seconds(described: dict[str, Any]) -> float:
    transitions = {t["Status"]: t for t in described["SecondaryStatusTransitions"]}
    return (
        transitions["Training"]["StartTime"] - transitions["Downloading"]["StartTime"]
    ).total_seconds()


def _package(folder: Path, name: str, setup_imports: str = "") -> None:
    (folder / name / name).mkdir(parents=True)
    # A fresh token makes the layer new to the shared environments folder, so the first run
    # of this test really installs.
    (folder / name / name / "__init__.py").write_text(
        f"NAME = {name!r}\nTOKEN = {uuid.uuid4().hex!r}\n"
    )
    (folder / name / "setup.py").write_text(
        f"{setup_imports}\nfrom setuptools import setup\n"
        f"setup(name={name!r}, version='1.0', packages=[{name!r}])\n"
    )


def test_requirements_layer_is_cached_and_ordered_mode_installs_in_file_order(
    framework_server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    logs = framework_server.client("logs")
    sagemaker = framework_server.client("sagemaker")
    source = tmp_path / "src"
    source.mkdir()
    _package(source, "pkg_a")
    # pkg_b's setup.py imports pkg_a, like an old pycocotools sdist importing Cython.
    _package(source, "pkg_b", setup_imports="import pkg_a")
    (source / "train.py").write_text(
        "import pkg_a, pkg_b, pathlib\n"
        "pathlib.Path('/opt/ml/model/ok.txt').write_text(pkg_a.NAME + pkg_b.NAME)\n"
    )
    (source / "requirements.txt").write_text("./pkg_a\n./pkg_b\n")
    sagemaker.create_training_job(**script_job("unordered", source))
    failed = wait_for_job(sagemaker, "unordered", deadline_seconds=900)
    assert failed["TrainingJobStatus"] == "Failed"
    assert "No module named 'pkg_a'" in failed["FailureReason"]

    (source / "requirements.txt").write_text("# dockyard: ordered\n./pkg_a\n./pkg_b\n")
    durations = []
    for name in ("ordered-1", "ordered-2"):
        sagemaker.create_training_job(**script_job(name, source))
        described = wait_for_job(sagemaker, name, deadline_seconds=900)
        assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
        durations.append(_downloading_seconds(described))
        stream = logs.describe_log_streams(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix=f"{name}/"
        )["logStreams"][0]
        events = logs.get_log_events(
            logGroupName="/aws/sagemaker/TrainingJobs",
            logStreamName=stream["logStreamName"],
            startFromHead=True,
        )
        text = "\n".join(e["message"] for e in events["events"])
        if name == "ordered-1":
            assert "Successfully installed pkg_a" in text or "Successfully installed pkg-a" in text
        else:
            assert "no pip run" in text
            assert "Successfully installed" not in text and "Processing ./pkg_a" not in text
    assert model_artifacts(framework_server, "ordered-2")["ok.txt"] == b"pkg_apkg_b"
    assert durations[1] < durations[0]
    with capsys.disabled():
        print(f"\n[requirements layer] first run {durations[0]:.2f} s, second {durations[1]:.2f} s")


ALL_REDUCE = """
import json, os, pathlib
import torch
import torch.distributed as dist

dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
value = torch.tensor([float(rank + 1)])
dist.all_reduce(value)
pathlib.Path(os.environ["SM_MODEL_DIR"], f"rank-{rank}.json").write_text(json.dumps({
    "rank": rank, "world": world, "sum": value.item(), "master": os.environ["MASTER_ADDR"],
    "host": os.environ["SM_CURRENT_HOST"],
}))
dist.barrier()
# Leave without gloo's teardown, which can abort when a peer closes first (see the example).
os._exit(0)
"""


@pytest.mark.parametrize(
    "distribution", ["sagemaker_torch_distributed_enabled", "sagemaker_pytorch_ddp_enabled"]
)
def test_two_hosts_all_reduce_with_torch_distributed(
    framework_server: RunningServer, tmp_path: Path, distribution: str
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(ALL_REDUCE)
    name = "ddp-" + ("torchrun" if "torch_distributed" in distribution else "pytorchddp")
    request = script_job(name, source, image="dockyard/pytorch:2.13", **{distribution: "true"})
    request["ResourceConfig"]["InstanceCount"] = 2
    sagemaker = framework_server.client("sagemaker")
    started = time.monotonic()
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, name, deadline_seconds=1200)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    model = model_artifacts(framework_server, name)  # both hosts' /opt/ml/model, merged
    results = [json.loads(data) for file, data in model.items() if file.startswith("rank-")]
    assert sorted(r["rank"] for r in results) == [0, 1]
    assert all(r["world"] == 2 and r["sum"] == 3.0 and r["master"] == "algo-1" for r in results)
    assert {r["host"] for r in results} == {"algo-1", "algo-2"}
    assert time.monotonic() - started < 1200


def test_entry_point_kinds_package_and_shell_script(
    framework_server: RunningServer, tmp_path: Path
) -> None:
    """The toolkit's three entry-point kinds (§2.8): a .py script (above), a package with a
    setup.py (run as `python -m`), and a shell script (run through /bin/sh)."""
    package = tmp_path / "package"
    (package / "trainer").mkdir(parents=True)
    (package / "setup.py").write_text(
        "from setuptools import setup\nsetup(name='trainer', version='1.0', packages=['trainer'])\n"
    )
    (package / "trainer" / "__init__.py").write_text("GREETING = 'from the package'\n")
    (package / "train.py").write_text(
        "import pathlib, sys, trainer\n"
        "pathlib.Path('/opt/ml/model/package.txt').write_text(trainer.GREETING + ' ' + __name__)\n"
    )
    shell = tmp_path / "shell"
    shell.mkdir()
    (shell / "train.sh").write_text('#!/bin/sh\necho "args: $@" > /opt/ml/model/shell.txt\n')
    sagemaker = framework_server.client("sagemaker")
    sagemaker.create_training_job(**script_job("as-package", package))
    sagemaker.create_training_job(**script_job("as-shell", shell, entry="train.sh", epochs="2"))
    for name in ("as-package", "as-shell"):
        described = wait_for_job(sagemaker, name, deadline_seconds=900)
        assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    package_model = model_artifacts(framework_server, "as-package")
    assert package_model["package.txt"] == b"from the package __main__"
    shell_model = model_artifacts(framework_server, "as-shell")
    assert shell_model["shell.txt"].decode().strip() == "args: --epochs 2"


def test_an_unknown_framework_image_is_refused_with_the_known_ones(
    framework_server: RunningServer, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text("print('never runs')\n")
    request = script_job(
        "mxnet",
        source,
        image="763104351884.dkr.ecr.us-east-1.amazonaws.com/mxnet-training:1.9.0-cpu-py38",
    )
    sagemaker = framework_server.client("sagemaker")
    with pytest.raises(sagemaker.exceptions.ClientError) as error:
        sagemaker.create_training_job(**request)
    message = error.value.response["Error"]["Message"]
    assert "mxnet" in message and "pytorch" in message and "DOCKYARD_FRAMEWORKS_FILE" in message


# The first article's workaround for a managed container: the code's own package pip-installs
# what it needs when it is imported, then imports it. A local wheel keeps the test off the network.
RUNTIME_PIP_PACKAGE = """
import subprocess

subprocess.run(
    ["pip", "install", "--no-index", "/opt/ml/code/wheels/tinydep-1.0-py3-none-any.whl"],
    check=True,
)
import tinydep  # noqa: E402

VALUE = tinydep.VALUE
"""

RUNTIME_PIP_SCRIPT = """
import importlib.util, json, pathlib, sys
was_installed = importlib.util.find_spec("tinydep") is not None
import mypackage
pathlib.Path("/opt/ml/model/pip.json").write_text(json.dumps({
    "was_installed": was_installed, "value": mypackage.VALUE, "python": sys.executable,
}))
"""


def test_a_package_that_pip_installs_at_run_time_then_imports_it(
    framework_server: RunningServer, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    (source / "mypackage").mkdir(parents=True)
    (source / "mypackage" / "__init__.py").write_text(RUNTIME_PIP_PACKAGE)
    (source / "train.py").write_text(RUNTIME_PIP_SCRIPT)
    tiny_wheel(source / "wheels")
    sagemaker = framework_server.client("sagemaker")
    for name in ("pip-at-run-time-1", "pip-at-run-time-2"):
        sagemaker.create_training_job(**script_job(name, source))
        described = wait_for_job(sagemaker, name, deadline_seconds=900)
        assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
        seen = _model_file(framework_server, name, "pip.json")
        # Installed into the job's own writable layer, gone with its volume: the second job
        # starts without it again, and no cached environment holds it.
        assert seen == {
            "was_installed": False,
            "value": 42,
            "python": "/opt/dockyard/python/bin/python",
        }
    envs = framework_server.settings.envs_dir
    assert not list(envs.glob("*/lib/python*/site-packages/tinydep"))
