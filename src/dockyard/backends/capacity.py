"""This machine's capacity: jobs wait until the CPUs, memory and GPUs their hosts ask for are
free (the local backend's gate)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from dockyard.contract.instance_types import InstanceType


@dataclass(frozen=True)
class Demand:
    cpus: float
    memory_gib: float
    gpus: int = 0

    def describe(self) -> str:
        if self.gpus:
            return f"{self.cpus:g} vCPU, {self.memory_gib:g} GiB and {self.gpus} GPU"
        return f"{self.cpus:g} vCPU and {self.memory_gib:g} GiB"


class Capacity:
    """A counting gate over the machine's CPUs, memory and GPUs.

    A job that asks for more CPUs or memory than the whole machine still runs when nothing else
    does (two ml.m5.large hosts on a 2-core laptop must work); it just never runs beside another
    job. GPUs are never shared: a job waits until all it asks for are free (the engine decides
    beforehand what a job gets when the machine has too few: engine.sizing.gpu_grant).
    `local` instances ask for the whole machine, as SageMaker local mode's containers do.
    """

    def __init__(self, cpus: float, memory_gib: float, gpus: int = 0) -> None:
        self.cpus = cpus
        self.memory_gib = memory_gib
        self.gpus = gpus
        self._used_cpus = 0.0
        self._used_memory = 0.0
        self._used_gpus = 0
        self._running = 0
        self._waiting = 0
        self._changed = threading.Condition()

    @property
    def waiting(self) -> int:
        """Jobs and instances waiting for capacity now."""
        return self._waiting

    def demand(self, instance: InstanceType, count: int, gpus: int = 0) -> Demand:
        """`count` hosts of `instance`, holding `gpus` GPUs in all."""
        if instance.is_whole_machine:
            return Demand(self.cpus, self.memory_gib, gpus)
        return Demand(instance.vcpus * count, instance.memory_gib * count, gpus)

    def _fits(self, demand: Demand) -> bool:
        if self._used_gpus + demand.gpus > self.gpus:
            return False
        if self._running == 0:
            return True
        return (
            self._used_cpus + demand.cpus <= self.cpus
            and self._used_memory + demand.memory_gib <= self.memory_gib
        )

    def acquire(
        self,
        demand: Demand,
        *,
        on_wait: Callable[[str], None] | None = None,
        cancelled: Callable[[], bool] = lambda: False,
    ) -> bool:
        """Block until `demand` fits; False if `cancelled()` turned true while waiting."""
        with self._changed:
            if not self._fits(demand) and on_wait is not None:
                free_cpus = max(self.cpus - self._used_cpus, 0)
                free_mem = max(self.memory_gib - self._used_memory, 0)
                free = f"{free_cpus:g} vCPU and {free_mem:.1f} GiB"
                if demand.gpus:
                    free_gpus = self.gpus - self._used_gpus
                    free = f"{free_cpus:g} vCPU, {free_mem:.1f} GiB and {free_gpus} GPU"
                on_wait(f"Waiting for capacity: needs {demand.describe()}, {free} free")
            self._waiting += 1
            try:
                while not self._fits(demand):
                    if cancelled():
                        return False
                    self._changed.wait(timeout=0.5)
            finally:
                self._waiting -= 1
            self._used_cpus += demand.cpus
            self._used_memory += demand.memory_gib
            self._used_gpus += demand.gpus
            self._running += 1
            return True

    def release(self, demand: Demand) -> None:
        with self._changed:
            self._used_cpus -= demand.cpus
            self._used_memory -= demand.memory_gib
            self._used_gpus -= demand.gpus
            self._running -= 1
            self._changed.notify_all()
