"""A real multi-node Ray cluster on this machine for the ray backend's tests: a head on
127.0.0.2 and a worker on 127.0.0.3 (ray.cluster_utils, each node its own raylet with its own
address), started once per session; tests may add a node and remove it again.

Each node has 2 CPUs and 9 GiB of memory to hand out, so one ml.m5.large host (2 vCPU, 8 GiB)
fills a node: "one host per node by its resources"."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

GIB = 1024**3
NODE_CPUS = 2
NODE_MEMORY = 9 * GIB
# The object store is used for small messages only (lines of output, node names).
_OBJECT_STORE = 100 * 1024**2


@dataclass
class RayCluster:
    cluster: Any
    address: str
    extra: list[Any] = field(default_factory=list)

    def add_node(self, ip: str) -> Any:
        node = self.cluster.add_node(
            num_cpus=NODE_CPUS,
            memory=NODE_MEMORY,
            object_store_memory=_OBJECT_STORE,
            node_ip_address=ip,
        )
        self.extra.append(node)
        self.cluster.wait_for_nodes()
        return node

    def remove_node(self, node: Any) -> None:
        self.cluster.remove_node(node, allow_graceful=False)
        if node in self.extra:
            self.extra.remove(node)

    def node_at(self, ip: str) -> Any:
        """The worker node (not the head: removing it ends the cluster) with address `ip`."""
        for node in self.cluster.worker_nodes:
            if node.node_ip_address == ip:
                return node
        raise LookupError(f"no worker node at {ip}")

    def node_ips(self) -> list[str]:
        import ray

        return sorted(n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"])


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[RayCluster]:
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    import ray
    from ray.cluster_utils import Cluster

    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": NODE_CPUS,
            "memory": NODE_MEMORY,
            "object_store_memory": _OBJECT_STORE,
            "node_ip_address": "127.0.0.2",
            "include_dashboard": False,
        },
    )
    cluster.add_node(
        num_cpus=NODE_CPUS,
        memory=NODE_MEMORY,
        object_store_memory=_OBJECT_STORE,
        node_ip_address="127.0.0.3",
    )
    cluster.wait_for_nodes()
    running = RayCluster(cluster, cluster.address)
    try:
        yield running
    finally:
        ray.shutdown()
        cluster.shutdown()
