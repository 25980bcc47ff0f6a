"""Framework image names and URIs resolve to pinned requirement sets; unknown ones say why."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dockyard.contract.errors import ImageError
from dockyard.runtimes.frameworks import (
    BUILT_IN,
    PYTORCH_MAIN,
    TOOLKIT,
    known_frameworks,
    load_frameworks_file,
    resolve_framework,
)

ECR = "763104351884.dkr.ecr.us-east-1.amazonaws.com"
SKLEARN_ECR = "683313688378.dkr.ecr.us-east-1.amazonaws.com"


@pytest.mark.parametrize(
    ("image", "name", "version", "note"),
    [
        ("dockyard/python:3.11", "python", "3.11", None),
        ("dockyard/sklearn:1.2-1", "sklearn", "1.2-1", None),
        ("dockyard/sklearn:1.4-2", "sklearn", "1.4-2", None),
        ("dockyard/sklearn:1.2", "sklearn", "1.2-1", None),
        ("dockyard/pytorch:2.13", "pytorch", "2.13", None),
        ("dockyard/pytorch:2.13.0", "pytorch", "2.13", None),
        ("dockyard/xgboost:1.7-1", "xgboost", "1.7-1", None),
        ("dockyard/xgboost:3.0-5", "xgboost", "3.0-5", None),
        ("dockyard/tensorflow:2.19", "tensorflow", "2.19", None),
        ("dockyard/huggingface:4.57", "huggingface", "4.57", None),
        ("dockyard/huggingface:5.17", "huggingface", "5.17", None),
        (f"{ECR}/pytorch-training:2.13.0-cpu-py311", "pytorch", "2.13", None),
        (f"{SKLEARN_ECR}/sagemaker-scikit-learn:1.2-1-cpu-py3", "sklearn", "1.2-1", None),
        (f"{SKLEARN_ECR}/sagemaker-scikit-learn:1.4-2", "sklearn", "1.4-2", None),
        (f"{SKLEARN_ECR}/sklearn-training:1.4-2-cpu-py3", "sklearn", "1.4-2", None),
        (f"{SKLEARN_ECR}/sagemaker-xgboost:1.7-1", "xgboost", "1.7-1", None),
        (f"{SKLEARN_ECR}/xgboost:3.0-5", "xgboost", "3.0-5", None),
        (f"{ECR}/tensorflow-training:2.19.0-cpu-py311", "tensorflow", "2.19", None),
        (
            f"{ECR}/huggingface-pytorch-training:2.13.0-transformers4.57.1-cpu-py311-ubuntu22.04",
            "huggingface",
            "4.57",
            None,
        ),
        (
            "727897471807.dkr.ecr.cn-north-1.amazonaws.com.cn/pytorch-training:2.13.0",
            "pytorch",
            "2.13",
            None,
        ),
        # Versions dockyard does not have: the nearest one, and a note saying so.
        (
            f"{ECR}/pytorch-training:2.1.0-cpu-py310",
            "pytorch",
            "2.13",
            "pytorch-training:2.1.0-cpu-py310 asked for PyTorch 2.1.0; "
            "dockyard provides 2.13 (CPU)",
        ),
        (
            "dockyard/pytorch:1.13",
            "pytorch",
            "2.13",
            "dockyard/pytorch:1.13 asked for PyTorch 1.13; dockyard provides 2.13 (CPU)",
        ),
        (
            f"{ECR}/pytorch-training:2.13.0-gpu-py311-cu121-ubuntu22.04-sagemaker",
            "pytorch",
            "2.13",
            "pytorch-training:2.13.0-gpu-py311-cu121-ubuntu22.04-sagemaker asked for a GPU build; "
            "dockyard provides the CPU build",
        ),
        (
            "dockyard/sklearn:1.3-1",
            "sklearn",
            "1.2-1",
            "dockyard/sklearn:1.3-1 asked for scikit-learn 1.3-1; dockyard provides 1.2-1",
        ),
        (
            f"{SKLEARN_ECR}/sagemaker-scikit-learn:1.5-1-cpu-py3",
            "sklearn",
            "1.4-2",
            "sagemaker-scikit-learn:1.5-1-cpu-py3 asked for scikit-learn 1.5-1; "
            "dockyard provides 1.4-2",
        ),
        (
            f"{SKLEARN_ECR}/sagemaker-xgboost:1.5-1",
            "xgboost",
            "1.7-1",
            "sagemaker-xgboost:1.5-1 asked for XGBoost 1.5-1; dockyard provides 1.7-1",
        ),
        (
            f"{ECR}/tensorflow-training:2.14.1-gpu-py310-cu118-ubuntu20.04-sagemaker",
            "tensorflow",
            "2.19",
            "tensorflow-training:2.14.1-gpu-py310-cu118-ubuntu20.04-sagemaker asked for "
            "TensorFlow 2.14.1; dockyard provides 2.19 (CPU)",
        ),
        (
            f"{ECR}/huggingface-pytorch-training:2.1.0-transformers4.36.0-gpu-py310-cu121-ubuntu20.04",
            "huggingface",
            "4.57",
            "huggingface-pytorch-training:2.1.0-transformers4.36.0-gpu-py310-cu121-ubuntu20.04 "
            "asked for Transformers 4.36.0; dockyard provides 4.57 (CPU)",
        ),
        (
            "dockyard/python:3.10",
            "python",
            "3.11",
            "dockyard/python:3.10 asked for Python 3.10; dockyard provides 3.11",
        ),
        (
            "dockyard/python",
            "python",
            "3.11",
            "dockyard/python names no Python version; dockyard provides 3.11",
        ),
        (
            f"{ECR}/pytorch-training:latest",
            "pytorch",
            "2.13",
            "pytorch-training:latest names no PyTorch version; dockyard provides 2.13 (CPU)",
        ),
    ],
)
def test_resolution(image: str, name: str, version: str, note: str | None) -> None:
    framework = resolve_framework(image)
    assert framework is not None
    assert (framework.name, framework.version, framework.note) == (name, version, note)
    assert framework.requested == image
    assert framework.requirements[: len(TOOLKIT)] == TOOLKIT


@pytest.mark.parametrize(
    "image",
    [
        "examples/r-randomforest",
        "./image",
        "/abs/path/image",
        "file:///abs/path/image",
        "file://examples/r",
        "python:3.11",  # a Docker Hub image, not a framework: read as a folder (and refused there)
        "dockyard/examples/x",
    ],
)
def test_folders_and_other_names_are_not_frameworks(image: str) -> None:
    assert resolve_framework(image) is None


def test_a_folder_called_like_a_framework_stays_a_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "dockyard" / "python").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    assert resolve_framework("dockyard/python") is None
    assert resolve_framework("dockyard/python:3.11") is not None


def test_the_pytorch_environments_run_the_shims_main_and_pin_the_one_cpu_torch() -> None:
    for image in ("dockyard/pytorch:2.13", "dockyard/huggingface:5.17"):
        framework = resolve_framework(image)
        assert framework is not None
        assert framework.training_module == PYTORCH_MAIN == "dockyard_shim:pytorch_main"
        assert "torch==2.13.0" in framework.requirements
        assert "sagemaker-pytorch-training==3.0.0 --no-deps" in framework.requirements
    python = resolve_framework("dockyard/python:3.11")
    assert python is not None and python.training_module is None
    assert python.requirements == TOOLKIT


def test_every_built_in_line_is_an_exact_pin() -> None:
    pin = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*==[0-9][0-9A-Za-z.+]*( --no-deps)?$")
    for framework in BUILT_IN:
        assert all(pin.match(line) for line in framework.requirements), framework
        assert framework.requirements[: len(TOOLKIT)] == TOOLKIT
    assert len({f"{f.name}:{f.version}" for f in BUILT_IN}) == len(BUILT_IN)


@pytest.mark.parametrize(
    ("image", "name"),
    [
        (f"{ECR}/mxnet-training:1.9.0-cpu-py38", "mxnet"),
        ("dockyard/julia:1", "julia"),
        ("123456789012.dkr.ecr.eu-west-1.amazonaws.com/my-algorithm:latest", "my-algorithm"),
    ],
)
def test_unknown_frameworks_list_the_known_ones_and_how_to_add_one(image: str, name: str) -> None:
    with pytest.raises(ImageError) as raised:
        resolve_framework(image)
    message = str(raised.value)
    assert f"dockyard knows no framework {name!r}" in message
    assert "python 3.11; sklearn 1.2-1, 1.4-2; pytorch 2.13;" in message
    assert "huggingface 4.57, 5.17" in message
    assert "DOCKYARD_FRAMEWORKS_FILE" in message
    assert '"requirements"' in message and '"training_module"' in message


def test_a_frameworks_file_adds_frameworks_and_replaces_built_in_ones(tmp_path: Path) -> None:
    path = tmp_path / "frameworks.json"
    path.write_text(
        json.dumps(
            {
                "mxnet:1.9": {
                    "requirements": [*TOOLKIT, "mxnet==1.9.1", "sagemaker-mxnet-training==4.2.0"],
                    "training_module": "sagemaker_mxnet_container.training:main",
                },
                "python:3.11": {"requirements": [*TOOLKIT, "requests==2.32.3"]},
            }
        )
    )
    extra = load_frameworks_file(path)
    assert set(extra) == {"mxnet:1.9", "python:3.11"}

    framework = resolve_framework(f"{ECR}/mxnet-training:1.9.0-cpu-py38", extra)
    assert framework is not None
    assert (framework.name, framework.version, framework.note) == ("mxnet", "1.9", None)
    assert framework.requirements == (*TOOLKIT, "mxnet==1.9.1", "sagemaker-mxnet-training==4.2.0")
    assert framework.training_module == "sagemaker_mxnet_container.training:main"
    resolved = resolve_framework("dockyard/mxnet:1.8", extra)
    assert resolved is not None and resolved.note is not None and "provides 1.9" in resolved.note

    python = resolve_framework("dockyard/python:3.11", extra)
    assert python is not None and python.requirements[-1] == "requests==2.32.3"
    assert known_frameworks(extra)["pytorch:2.13"] == known_frameworks()["pytorch:2.13"]
    with pytest.raises(ImageError, match=r"mxnet 1\.9"):
        resolve_framework("dockyard/julia:1", extra)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "is not valid JSON"),
        ("[]", "must hold a JSON object"),
        ('{"MXNet 1.9": {"requirements": ["a==1"]}}', "the key must be name:version"),
        ('{"mxnet:1.9": ["a==1"]}', 'the value must be an object with "requirements"'),
        ('{"mxnet:1.9": {}}', '"requirements" must be a list of pip requirement lines'),
        ('{"mxnet:1.9": {"requirements": []}}', '"requirements" must be a list'),
        ('{"mxnet:1.9": {"requirements": ["a==1", 2]}}', '"requirements" must be a list'),
        (
            '{"mxnet:1.9": {"requirements": ["a==1"], "training_module": "no-colon"}}',
            '"training_module" must be "module:function"',
        ),
        ('{"mxnet:1.9": {"requirements": ["a==1"], "image": "x"}}', "unknown field 'image'"),
    ],
)
def test_frameworks_file_errors_name_the_file(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "frameworks.json"
    path.write_text(content)
    with pytest.raises(ImageError) as raised:
        load_frameworks_file(path)
    assert str(path) in str(raised.value)
    assert expected in str(raised.value)


def test_a_missing_frameworks_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        ImageError, match=r"absent\.json \(DOCKYARD_FRAMEWORKS_FILE\) does not exist"
    ):
        load_frameworks_file(tmp_path / "absent.json")
