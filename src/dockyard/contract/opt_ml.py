"""The /opt/ml tree of one host and the config files the platform writes into it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONTAINER_ROOT = "/opt/ml"
HOMOGENEOUS_GROUP = "homogeneousCluster"
NETWORK_INTERFACE = "eth0"
DEFAULT_CHECKPOINT_PATH = "/opt/ml/checkpoints"


@dataclass(frozen=True)
class OptMl:
    """The host-side folder that is bound at /opt/ml inside one host's sandbox."""

    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "input" / "config"

    @property
    def data_dir(self) -> Path:
        return self.root / "input" / "data"

    def channel_dir(self, channel: str) -> Path:
        return self.data_dir / channel

    def pipe_path(self, channel: str, epoch: int) -> Path:
        return self.data_dir / f"{channel}_{epoch}"

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def output_data_dir(self) -> Path:
        return self.root / "output" / "data"

    @property
    def failure_file(self) -> Path:
        return self.root / "output" / "failure"

    @property
    def code_dir(self) -> Path:
        return self.root / "code"

    def container_path(self, host_path: Path) -> str:
        """Where a path under this folder appears inside the sandbox."""
        return f"{CONTAINER_ROOT}/{host_path.relative_to(self.root).as_posix()}"

    def create(self) -> None:
        for folder in (
            self.config_dir,
            self.data_dir,
            self.model_dir,
            self.output_data_dir,
            self.code_dir,
        ):
            folder.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class ChannelConfig:
    """What inputdataconfig.json says of one channel."""

    input_mode: str = "File"
    distribution: str = "FullyReplicated"
    record_wrapper: str = "None"
    content_type: str | None = None

    def to_json(self) -> dict[str, str]:
        # Key order follows the reference's example; ContentType only when the channel had one.
        out: dict[str, str] = {}
        if self.content_type is not None:
            out["ContentType"] = self.content_type
        out["TrainingInputMode"] = self.input_mode
        out["S3DistributionType"] = self.distribution
        out["RecordWrapperType"] = self.record_wrapper
        return out


def host_names(count: int) -> list[str]:
    """`algo-1 … algo-N` in numeric order (the order SageMaker local mode uses; the service's
    ordering for 10 or more hosts is unconfirmed)."""
    return [f"algo-{i}" for i in range(1, count + 1)]


def resource_config(
    current_host: str, hosts: list[str], instance_type: str, group: str = HOMOGENEOUS_GROUP
) -> dict[str, Any]:
    return {
        "current_host": current_host,
        "current_instance_type": instance_type,
        "current_group_name": group,
        "hosts": list(hosts),
        "instance_groups": [
            {"instance_group_name": group, "instance_type": instance_type, "hosts": list(hosts)}
        ],
        "network_interface_name": NETWORK_INTERFACE,
    }


def checkpoint_config(s3_uri: str, local_path: str | None) -> dict[str, str]:
    return {"LocalPath": local_path or DEFAULT_CHECKPOINT_PATH, "S3Uri": s3_uri}


def write_training_config(
    opt_ml: OptMl,
    *,
    hyperparameters: Mapping[str, str],
    channels: Mapping[str, ChannelConfig],
    resources: Mapping[str, Any],
    checkpoint: Mapping[str, str] | None = None,
) -> None:
    """Write the config files of one host. Hyperparameter values are written exactly as given:
    they are strings on the wire and the SDK's JSON-encoded values must survive byte for byte."""
    opt_ml.config_dir.mkdir(parents=True, exist_ok=True)
    _write_json(opt_ml.config_dir / "hyperparameters.json", dict(hyperparameters))
    _write_json(
        opt_ml.config_dir / "inputdataconfig.json",
        {name: config.to_json() for name, config in channels.items()},
    )
    _write_json(opt_ml.config_dir / "resourceconfig.json", dict(resources))
    if checkpoint is not None:
        _write_json(opt_ml.config_dir / "checkpointconfig.json", dict(checkpoint))


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=None, ensure_ascii=False), encoding="utf-8")
