"""Machine capacity: jobs wait until the CPUs and memory their hosts ask for are free."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from dockyard.contract.instance_types import InstanceType


@dataclass(frozen=True)
class Demand:
    cpus: float
    memory_gib: float

    def describe(self) -> str:
        return f"{self.cpus:g} vCPU and {self.memory_gib:g} GiB"


class Capacity:
    """A counting gate over the machine's CPUs and memory.

    A job that asks for more than the whole machine still runs when nothing else does (two
    ml.m5.large hosts on a 2-core laptop must work); it just never runs beside another job.
    `local` instances ask for the whole machine, as SageMaker local mode's containers do.
    """

    def __init__(self, cpus: float, memory_gib: float) -> None:
        self.cpus = cpus
        self.memory_gib = memory_gib
        self._used_cpus = 0.0
        self._used_memory = 0.0
        self._running = 0
        self._changed = threading.Condition()

    def demand(self, instance: InstanceType, count: int) -> Demand:
        if instance.is_whole_machine:
            return Demand(self.cpus, self.memory_gib)
        return Demand(instance.vcpus * count, instance.memory_gib * count)

    def _fits(self, demand: Demand) -> bool:
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
                on_wait(
                    f"Waiting for capacity: needs {demand.describe()}, "
                    f"{free_cpus:g} vCPU and {free_mem:.1f} GiB free"
                )
            while not self._fits(demand):
                if cancelled():
                    return False
                self._changed.wait(timeout=0.5)
            self._used_cpus += demand.cpus
            self._used_memory += demand.memory_gib
            self._running += 1
            return True

    def release(self, demand: Demand) -> None:
        with self._changed:
            self._used_cpus -= demand.cpus
            self._used_memory -= demand.memory_gib
            self._running -= 1
            self._changed.notify_all()
