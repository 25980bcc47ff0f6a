"""A framework estimator's `distribution=` as the `sagemaker_*` hyperparameters the training
toolkit reads to pick its runner (reference §2.4), and back again for attach()."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ENABLED_FLAGS = {
    "torch_distributed": "sagemaker_torch_distributed_enabled",
    "pytorchddp": "sagemaker_pytorch_ddp_enabled",
    "mpi": "sagemaker_mpi_enabled",
    "parameter_server": "sagemaker_parameter_server_enabled",
    "multi_worker_mirrored_strategy": "sagemaker_multi_worker_mirrored_strategy_enabled",
    "pytorchxla": "sagemaker_pytorch_xla_multi_worker_enabled",
}
MPI_PROCESSES_PER_HOST = "sagemaker_mpi_num_of_processes_per_host"
MPI_CUSTOM_OPTIONS = "sagemaker_mpi_custom_mpi_options"
INSTANCE_TYPE = "sagemaker_instance_type"
# The SDK names the instance type alongside these launchers; the toolkit reads it.
_WITH_INSTANCE_TYPE = ("torch_distributed", "pytorchddp")


def distribution_hyperparameters(
    distribution: Mapping[str, Any] | None, instance_type: str | None
) -> dict[str, Any]:
    """`{"torch_distributed": {"enabled": True}}` → `{"sagemaker_torch_distributed_enabled":
    True, "sagemaker_instance_type": ...}`, and likewise for the other strategies."""
    if not distribution:
        return {}
    unknown = sorted(set(distribution) - set(ENABLED_FLAGS))
    if "smdistributed" in unknown:
        raise ValueError(
            "distribution smdistributed needs AWS's SageMaker distributed libraries and GPUs, "
            "which dockyard does not have; use torch_distributed (torchrun) or mpi instead"
        )
    if "instance_groups" in unknown:
        raise ValueError("distribution instance_groups (heterogeneous clusters) is not supported")
    if unknown:
        raise ValueError(
            f"unknown distribution strategy {', '.join(unknown)}; dockyard knows "
            f"{', '.join(ENABLED_FLAGS)}"
        )
    flags: dict[str, Any] = {}
    for strategy, flag in ENABLED_FLAGS.items():
        if strategy not in distribution:
            continue
        options = distribution[strategy] or {}
        flags[flag] = bool(options.get("enabled", False))
        if strategy == "mpi":
            if options.get("processes_per_host"):
                flags[MPI_PROCESSES_PER_HOST] = options["processes_per_host"]
            flags[MPI_CUSTOM_OPTIONS] = options.get("custom_mpi_options", "")
        if strategy in _WITH_INSTANCE_TYPE and flags[flag] and instance_type:
            flags[INSTANCE_TYPE] = instance_type
    return flags


def distribution_from_hyperparameters(hyperparameters: Mapping[str, Any]) -> dict[str, Any] | None:
    """The `distribution` that distribution_hyperparameters turned into these flags."""
    distribution: dict[str, Any] = {}
    for strategy, flag in ENABLED_FLAGS.items():
        if flag in hyperparameters:
            distribution[strategy] = {"enabled": bool(hyperparameters[flag])}
    if "mpi" in distribution:
        if MPI_PROCESSES_PER_HOST in hyperparameters:
            distribution["mpi"]["processes_per_host"] = hyperparameters[MPI_PROCESSES_PER_HOST]
        distribution["mpi"]["custom_mpi_options"] = hyperparameters.get(MPI_CUSTOM_OPTIONS, "")
    return distribution or None
