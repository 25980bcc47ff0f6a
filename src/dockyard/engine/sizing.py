"""What one host of an instance type gets: its CPU, memory and process limits, and its volume."""

from __future__ import annotations

from dockyard.contract.instance_types import instance_type
from dockyard.runtimes.cgroups import Limits
from dockyard.runtimes.volumes import GIB
from dockyard.settings import Settings


def host_limits(settings: Settings, type_name: str) -> Limits:
    """An ml.* type's vCPUs and memory, at most the machine's; `local` gets the whole machine
    (the capacity settings), as SageMaker local mode's containers do."""
    instance = instance_type(type_name or "local")
    if instance.is_whole_machine:
        cpus, memory_gib = float(settings.cpus), settings.memory_gib
    else:
        cpus = float(min(instance.vcpus, settings.cpus))
        memory_gib = min(instance.memory_gib, settings.memory_gib)
    return Limits(cpus=cpus, memory_bytes=int(memory_gib * GIB), pids=settings.max_processes)


def volume_bytes(settings: Settings, size_gb: int | None) -> int:
    """VolumeSizeInGB (SageMaker's GB are GiB here), or the default for requests without one."""
    return int((size_gb or settings.default_volume_gb) * GIB)
