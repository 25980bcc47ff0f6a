"""The config files of /opt/ml/input/config, exactly as the reference describes them."""

from __future__ import annotations

import json
from pathlib import Path

from dockyard.contract.names import job_name_from_base
from dockyard.contract.opt_ml import (
    ChannelConfig,
    OptMl,
    checkpoint_config,
    host_names,
    resource_config,
    write_training_config,
)


def test_config_files(tmp_path: Path) -> None:
    opt_ml = OptMl(tmp_path / "ml")
    opt_ml.create()
    hyperparameters = {"epochs": "10", "optimizer": '"adam"', "weird": 'a "q" \\ ü'}
    write_training_config(
        opt_ml,
        hyperparameters=hyperparameters,
        channels={
            "train": ChannelConfig(content_type="text/csv"),
            "val": ChannelConfig(input_mode="Pipe", distribution="ShardedByS3Key"),
        },
        resources=resource_config("algo-2", host_names(3), "ml.m5.large"),
        checkpoint=checkpoint_config("s3://b/ck", None),
    )
    config = opt_ml.config_dir
    assert json.loads((config / "hyperparameters.json").read_text()) == hyperparameters
    assert json.loads((config / "inputdataconfig.json").read_text()) == {
        "train": {
            "ContentType": "text/csv",
            "TrainingInputMode": "File",
            "S3DistributionType": "FullyReplicated",
            "RecordWrapperType": "None",
        },
        "val": {
            "TrainingInputMode": "Pipe",
            "S3DistributionType": "ShardedByS3Key",
            "RecordWrapperType": "None",
        },
    }
    resources = json.loads((config / "resourceconfig.json").read_text())
    assert resources == {
        "current_host": "algo-2",
        "current_instance_type": "ml.m5.large",
        "current_group_name": "homogeneousCluster",
        "hosts": ["algo-1", "algo-2", "algo-3"],
        "instance_groups": [
            {
                "instance_group_name": "homogeneousCluster",
                "instance_type": "ml.m5.large",
                "hosts": ["algo-1", "algo-2", "algo-3"],
            }
        ],
        "network_interface_name": "eth0",
    }
    assert json.loads((config / "checkpointconfig.json").read_text()) == {
        "LocalPath": "/opt/ml/checkpoints",
        "S3Uri": "s3://b/ck",
    }
    for folder in ("model", "output/data", "input/data", "code"):
        assert (opt_ml.root / folder).is_dir()


def test_no_checkpoint_file_unless_asked(tmp_path: Path) -> None:
    opt_ml = OptMl(tmp_path)
    write_training_config(opt_ml, hyperparameters={}, channels={}, resources={}, checkpoint=None)
    assert not (opt_ml.config_dir / "checkpointconfig.json").exists()
    assert (opt_ml.config_dir / "hyperparameters.json").read_text() == "{}"


def test_host_names_are_in_numeric_order() -> None:
    assert host_names(11)[-2:] == ["algo-10", "algo-11"]


def test_generated_job_names_fit_the_limit() -> None:
    name = job_name_from_base("examples/" + "r-randomforest" * 10)
    assert len(name) <= 63
    assert name[0].isalnum() and "--" not in name[:-24]
