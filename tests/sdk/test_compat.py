"""SageMaker SDK v1 names: accepted with a DeprecationWarning naming the v2 spelling; v2 code is
silent; giving both spellings is a TypeError."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

import dockyard.sdk as sagemaker
from dockyard.sdk.estimator import Estimator
from dockyard.sdk.pytorch import PyTorch
from dockyard.sdk.sklearn import SKLearn

ROLE = "arn:aws:iam::111111111111:role/r"


@pytest.fixture
def script(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("print('training')\n")
    return tmp_path / "src"


V1_ESTIMATOR_ARGUMENTS = [
    ("image_name", "img:1", "image_uri", "img:1"),
    ("train_instance_count", 2, "instance_count", 2),
    ("train_instance_type", "ml.c5.xlarge", "instance_type", "ml.c5.xlarge"),
    ("train_volume_size", 50, "volume_size", 50),
    ("train_max_run", 600, "max_run", 600),
    ("train_use_spot_instances", True, "use_spot_instances", True),
    ("train_max_wait", 900, "max_wait", 900),
]


@pytest.mark.parametrize(("old", "value", "new", "expected"), V1_ESTIMATOR_ARGUMENTS)
def test_each_v1_argument_warns_with_its_v2_name_and_takes_effect(
    old: str, value: Any, new: str, expected: Any
) -> None:
    base: dict[str, Any] = {"image_uri": "img:1", "role": ROLE}
    base.pop(new, None)
    with pytest.deprecated_call(match=f"^{old} is the SageMaker SDK v1 name; use {new}$"):
        estimator = Estimator(**base, **{old: value})
    assert getattr(estimator, new) == expected


def test_the_v1_kms_key_is_renamed_then_ignored_as_every_kms_key_is() -> None:
    with pytest.deprecated_call(match="train_volume_kms_key .* use volume_kms_key"):
        estimator = Estimator("img:1", ROLE, train_volume_kms_key="arn:aws:kms:key")
    request = estimator.training_request(job_name="kms", inputs=None)
    assert "VolumeKmsKeyId" not in request["ResourceConfig"]


def test_v1_seed_code_builds_the_same_request_as_v2_code() -> None:
    with pytest.deprecated_call():
        v1 = Estimator(
            image_name="img:1",
            role=ROLE,
            train_instance_count=1,
            train_instance_type="ml.m5.large",
            train_volume_size=40,
            train_max_run=1200,
            output_path="s3://bucket/out",
        )
    v2 = Estimator(
        image_uri="img:1",
        role=ROLE,
        instance_count=1,
        instance_type="ml.m5.large",
        volume_size=40,
        max_run=1200,
        output_path="s3://bucket/out",
    )
    assert v1.training_request(job_name="j") == v2.training_request(job_name="j")


def test_every_v1_use_warns_once_and_points_at_the_callers_line() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Estimator(image_name="img:1", train_instance_count=1, train_instance_type="local")
    assert [str(w.message).split(" ")[0] for w in caught] == [
        "image_name",
        "train_instance_count",
        "train_instance_type",
    ]
    assert {w.category for w in caught} == {DeprecationWarning}
    assert {w.filename for w in caught} == {__file__}


def test_distributions_is_the_v1_name_of_distribution(script: Path) -> None:
    with pytest.deprecated_call() as caught:
        estimator = PyTorch(
            "train.py",
            "2.13",
            source_dir=str(script),
            train_instance_count=2,
            train_instance_type="ml.m5.large",
            distributions={"mpi": {"enabled": True, "processes_per_host": 2}},
        )
    assert "distributions is the SageMaker SDK v1 name; use distribution" in [
        str(w.message) for w in caught
    ]
    hyperparameters = estimator.hyperparameters()
    assert hyperparameters["sagemaker_mpi_enabled"] == "true"
    assert hyperparameters["sagemaker_mpi_num_of_processes_per_host"] == "2"
    assert estimator.instance_count == 2


def test_v1_framework_image_name(script: Path) -> None:
    with pytest.deprecated_call(match="image_name .* use image_uri"):
        estimator = SKLearn("train.py", source_dir=str(script), image_name="my/sklearn:custom")
    assert estimator.training_image_uri() == "my/sklearn:custom"


@pytest.mark.parametrize(
    ("call", "names"),
    [
        (lambda: Estimator("img:1", ROLE, image_name="img:2"), ("image_name", "image_uri")),
        (lambda: Estimator("img:1", ROLE, 1, train_instance_count=2), ("train_instance_count",)),
        (
            lambda: Estimator("img:1", train_max_run=5, max_run=6),
            ("train_max_run", "max_run"),
        ),
        (
            lambda: PyTorch("t.py", "2.13", distribution={}, distributions={}),
            ("distributions", "distribution"),
        ),
    ],
)
def test_both_spellings_at_once_are_a_type_error_naming_both(
    call: Any, names: tuple[str, ...]
) -> None:
    with pytest.raises(TypeError, match="got both") as raised:
        call()
    for name in names:
        assert name in str(raised.value)


@pytest.mark.parametrize("where", [sagemaker, sagemaker.session, sagemaker.inputs])
def test_s3_input_is_a_deprecated_training_input(where: Any) -> None:
    with pytest.deprecated_call(match="s3_input .* use sagemaker.inputs.TrainingInput"):
        channel = where.s3_input("s3://b/k", distribution="ShardedByS3Key", content_type="text/csv")
    assert isinstance(channel, sagemaker.TrainingInput)
    assert (
        channel.config
        == sagemaker.TrainingInput(
            "s3://b/k", distribution="ShardedByS3Key", content_type="text/csv"
        ).config
    )


def test_session_shuffle_config_is_deprecated() -> None:
    with pytest.deprecated_call(match="use sagemaker.inputs.ShuffleConfig"):
        config = sagemaker.session.ShuffleConfig(7)
    assert isinstance(config, sagemaker.inputs.ShuffleConfig)
    assert sagemaker.TrainingInput("s3://b/k", shuffle_config=config).config["ShuffleConfig"] == {
        "Seed": 7
    }


def test_v2_code_is_silent(script: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session = sagemaker.Session()
        estimator = sagemaker.estimator.Estimator(
            image_uri="img:1",
            role=ROLE,
            instance_count=1,
            instance_type="ml.m5.large",
            volume_size=30,
            max_run=3600,
            use_spot_instances=False,
            max_wait=None,
            output_path="s3://bucket/out",
            sagemaker_session=session,
        )
        estimator.set_hyperparameters(epochs=3)
        estimator.training_request(sagemaker.inputs.TrainingInput("s3://b/k"), job_name="j")
        framework = sagemaker.pytorch.PyTorch(
            entry_point="train.py",
            source_dir=str(script),
            framework_version="2.13",
            py_version="py311",
            role=sagemaker.get_execution_role(),
            instance_count=2,
            instance_type="ml.m5.large",
            distribution={"torch_distributed": {"enabled": True}},
            output_path="s3://bucket/out",
        )
        framework.training_request({"training": "s3://b/k"}, job_name="k")
        sagemaker.sklearn.SKLearn("train.py", "1.2-1", source_dir=str(script))
        sagemaker.inputs.ShuffleConfig(1)
    assert caught == []


def test_aws_only_arguments_are_accepted_and_not_sent() -> None:
    estimator = Estimator(
        "img:1",
        ROLE,
        1,
        "ml.m5.large",
        output_path="s3://bucket/out",
        subnets=["subnet-1"],
        security_group_ids=["sg-1"],
        volume_kms_key="k",
        output_kms_key="k",
        rules=[object()],
        debugger_hook_config=False,
        tensorboard_output_config=object(),
        profiler_config=object(),
        disable_profiler=True,
        enable_sagemaker_metrics=True,
        training_repository_access_mode="Vpc",
        enable_infra_check=True,
        enable_remote_debug=True,
        enable_session_tag_chaining=True,
        training_plan="plan",
    )
    request = estimator.training_request(job_name="aws")
    assert set(request) == {
        "TrainingJobName",
        "RoleArn",
        "AlgorithmSpecification",
        "OutputDataConfig",
        "ResourceConfig",
        "StoppingCondition",
    }


def test_an_unknown_argument_is_still_a_type_error() -> None:
    with pytest.raises(TypeError, match="unexpected keyword argument 'instnace_count'"):
        Estimator("img:1", ROLE, instnace_count=2)
