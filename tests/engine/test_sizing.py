"""What hosts get of their type's GPUs, and the capacity gate holding GPUs.

There is no GPU on the test machines: where a test needs a machine with GPUs, it pretends one by
its GPU count (Settings.gpus, Capacity's `gpus`), the only thing mocked here.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from dockyard.backends.capacity import Capacity
from dockyard.contract.instance_types import instance_type
from dockyard.engine.sizing import gpu_grant, host_limits, resource_env
from dockyard.settings import Settings


def settings(tmp_path: Path, **changes: Any) -> Settings:
    return Settings(home=tmp_path, cpus=2, memory_gib=24.0, **changes)


def test_a_type_bigger_than_the_machine_is_capped_at_it(tmp_path: Path) -> None:
    # ml.p2.xlarge (4 vCPU, 61 GiB) on a 2-core, 24 GiB machine: as ml.m5.4xlarge is.
    p2, m5 = (
        host_limits(settings(tmp_path), "ml.p2.xlarge"),
        host_limits(settings(tmp_path), "ml.m5.4xlarge"),
    )
    assert p2 == m5
    assert p2.cpus == 2.0 and p2.memory_bytes == 24 * 1024**3


def test_no_gpus_on_the_machine_means_cpu_hosts(tmp_path: Path) -> None:
    grant = gpu_grant(settings(tmp_path), "ml.p3.8xlarge", 2)
    assert grant.short and grant.asked == 4 and grant.per_host == 0 and grant.total == 0
    assert grant.cpu_note().startswith(
        "2 hosts of ml.p3.8xlarge ask for 8 GPUs (4 GPUs each) and this machine has 0"
    )
    limits = host_limits(settings(tmp_path), "ml.p3.8xlarge")
    assert resource_env(limits, grant) == {"SM_NUM_CPUS": "2", "SM_NUM_GPUS": "0"}
    cpu_only = gpu_grant(settings(tmp_path), "ml.m5.large", 3)
    assert not cpu_only.short and cpu_only.per_host == 0


def test_a_machine_with_gpus_grants_whole_types_only(tmp_path: Path) -> None:
    # Pretended: this machine has 4 GPUs.
    four = settings(tmp_path, gpus=4)
    assert gpu_grant(four, "ml.p3.8xlarge", 1).per_host == 4
    assert gpu_grant(four, "ml.p2.xlarge", 4).total == 4
    assert gpu_grant(four, "ml.p2.xlarge", 5).short  # 5 hosts, 4 GPUs: none get one
    assert gpu_grant(four, "local_gpu", 1).per_host == 4  # every GPU, as local mode gives
    assert gpu_grant(four, "local", 1).per_host == 0
    assert gpu_grant(settings(tmp_path), "local_gpu", 1).short


def test_gpus_are_never_shared_though_cpus_may_be() -> None:
    capacity = Capacity(cpus=2, memory_gib=8, gpus=1)  # pretended: one GPU
    p2 = instance_type("ml.p2.xlarge")
    first = capacity.demand(p2, 1, gpus=1)
    assert capacity.acquire(first)
    waited: list[str] = []
    second = capacity.demand(p2, 1, gpus=1)
    acquired = threading.Event()

    def take() -> None:
        capacity.acquire(second, on_wait=waited.append)
        acquired.set()

    thread = threading.Thread(target=take)
    thread.start()
    assert not acquired.wait(0.3)
    assert waited == [
        "Waiting for capacity: needs 4 vCPU, 61 GiB and 1 GPU, 0 vCPU, 0.0 GiB and 0 GPU free"
    ]
    capacity.release(first)
    assert acquired.wait(5)
    thread.join()
    capacity.release(second)
    # More GPUs than the machine has: never, even alone (the engine decides before asking).
    stopped = threading.Event()
    stopped.set()
    assert not capacity.acquire(capacity.demand(p2, 2, gpus=2), cancelled=stopped.is_set)
