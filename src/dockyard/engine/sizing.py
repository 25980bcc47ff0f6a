"""What one host of an instance type gets: its CPUs, memory, processes, GPUs and volume."""

from __future__ import annotations

from dataclasses import dataclass

from dockyard.contract.instance_types import instance_type
from dockyard.runtimes.base import Limits
from dockyard.settings import Settings

GIB = 1 << 30


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


@dataclass(frozen=True)
class GpuGrant:
    """What `count` hosts of one instance type get of its GPUs on this machine."""

    type_name: str
    count: int
    asked: int  # GPUs per host the type has
    machine: int  # GPUs the scheduler hands out (DOCKYARD_GPUS)
    per_host: int  # GPUs each host gets: SM_NUM_GPUS

    @property
    def short(self) -> bool:
        """The machine has fewer GPUs than the hosts ask for in all."""
        return self.asked * self.count > self.machine

    @property
    def total(self) -> int:
        return self.per_host * self.count

    def _asks(self) -> str:
        each = _gpus(self.asked)
        if self.count == 1:
            return f"{self.type_name} has {each}"
        total = self.asked * self.count
        return f"{self.count} hosts of {self.type_name} ask for {total} GPUs ({each} each)"

    def cpu_note(self) -> str:
        """The log line of a host that runs on the CPU for want of GPUs."""
        return (
            f"{self._asks()} and this machine has {self.machine} for dockyard (DOCKYARD_GPUS): "
            "running on the CPU, with SM_NUM_GPUS=0. Set DOCKYARD_GPU_SHORTAGE=wait or "
            "DOCKYARD_GPU_SHORTAGE=fail on the server to hold or fail such jobs instead"
        )

    def wait_message(self) -> str:
        return (
            f"Waiting for GPUs: {self._asks()} and this machine has {self.machine} "
            "(DOCKYARD_GPUS); DOCKYARD_GPU_SHORTAGE=wait keeps such jobs Pending. Stop the job, "
            "or restart the server with DOCKYARD_GPU_SHORTAGE=cpu to run such jobs on the CPU"
        )

    def failure_reason(self, policy: str, *, queued: bool = True) -> str:
        """The FailureReason under DOCKYARD_GPU_SHORTAGE=`policy` (fail; or wait, for endpoint
        and transform instances, which are not `queued`)."""
        if policy == "wait" and not queued:
            refused = "holds training jobs, but endpoints and transform jobs do not wait for GPUs"
        else:
            refused = "fails such jobs"
        return (
            f"CapacityError: {self._asks()} and this machine has {self.machine} for dockyard "
            f"(DOCKYARD_GPUS); the server's DOCKYARD_GPU_SHORTAGE={policy} {refused}. Use a CPU "
            "instance type such as ml.m5.xlarge, or set DOCKYARD_GPU_SHORTAGE=cpu on the server "
            "to run GPU types on the CPU"
        )


def gpu_grant(settings: Settings, type_name: str, count: int) -> GpuGrant:
    """Each host's GPUs: all its type has when the machine has that many for all `count` hosts,
    else none (what then happens is DOCKYARD_GPU_SHORTAGE's to say). `local_gpu` asks for every
    GPU of the machine, at least one."""
    instance = instance_type(type_name or "local")
    asked = instance.gpus
    if instance.is_whole_machine and asked:
        asked = max(settings.gpus, 1)
    grant = GpuGrant(instance.name, count, asked, settings.gpus, asked)
    if grant.short:
        return GpuGrant(instance.name, count, asked, settings.gpus, 0)
    return grant


def resource_env(limits: Limits, grant: GpuGrant) -> dict[str, str]:
    """SM_NUM_CPUS and SM_NUM_GPUS as the SageMaker toolkits set them, from what the host got
    (the toolkits recount for themselves; a program without one reads these)."""
    cpus = max(1, int(limits.cpus or 1))
    return {"SM_NUM_CPUS": str(cpus), "SM_NUM_GPUS": str(grant.per_host)}


def _gpus(count: int) -> str:
    return f"{count} GPU" if count == 1 else f"{count} GPUs"
