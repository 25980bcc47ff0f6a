"""The cluster benchmark's Ray cluster: two nodes on this machine (a head on 127.0.0.2, a worker
on 127.0.0.3, each its own raylet, as tests/ray_cluster.py makes them); a hold that fills one
node so that the next serving instance can only go to the other; and Ray's own floor for what the
ray backend does per host (a placement group, an actor in it, one call, both gone again)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

GIB = 1024**3
HEAD_IP = "127.0.0.2"
WORKER_IP = "127.0.0.3"
# As in the tests: one ml.m5.large host (2 vCPU, 8 GiB) fills a node.
NODE_CPUS = 2
NODE_MEMORY = 9 * GIB
# The object store carries small messages only (output lines, node names).
OBJECT_STORE_BYTES = 100 * 1024**2
HOLD_SECONDS = 30.0


@dataclass
class RayNodes:
    address: str  # what DOCKYARD_RAY_ADDRESS names
    started_ms: float  # from Cluster() until both nodes are up


@contextlib.contextmanager
def two_node_cluster() -> Iterator[RayNodes]:
    """The cluster, shut down at the end (its raylets and every actor on them), also on error.
    The drivers that connected (the ray backend's ray.init) must be shut down first."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    from ray.cluster_utils import Cluster

    start = time.perf_counter()
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": NODE_CPUS,
            "memory": NODE_MEMORY,
            "object_store_memory": OBJECT_STORE_BYTES,
            "node_ip_address": HEAD_IP,
            "include_dashboard": False,
        },
    )
    try:
        cluster.add_node(
            num_cpus=NODE_CPUS,
            memory=NODE_MEMORY,
            object_store_memory=OBJECT_STORE_BYTES,
            node_ip_address=WORKER_IP,
        )
        cluster.wait_for_nodes()
        yield RayNodes(cluster.address, (time.perf_counter() - start) * 1000)
    finally:
        import ray

        ray.shutdown()
        cluster.shutdown()


@contextlib.contextmanager
def holding_node(ip: str) -> Iterator[None]:
    """Every CPU of the node at `ip` held by a placement group of this driver (pinned there by
    Ray's own `node:<ip>` resource), so no host can be placed on it until the hold ends. Needs
    ray initialised (the ray backend's engine does it)."""
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group

    group = placement_group([{"CPU": float(NODE_CPUS), f"node:{ip}": 0.001}], name=f"hold-{ip}")
    try:
        if not group.wait(timeout_seconds=HOLD_SECONDS):
            free = ray.available_resources()
            raise RuntimeError(f"could not hold node {ip} within {HOLD_SECONDS:g} s: {free}")
        yield
    finally:
        remove_placement_group(group)
        _wait_removed(group)


@dataclass
class BareActorRun:
    """Ray alone, per step, in ms."""

    group_ready: float  # placement_group() until wait() says ready
    actor_answered: float  # .remote() until its first call's answer is back
    gone: float  # ray.kill, then the group removed until Ray says so

    @property
    def total_ms(self) -> float:
        return self.group_ready + self.actor_answered + self.gone

    @property
    def phases(self) -> dict[str, float]:
        return {
            "placement group made and ready": self.group_ready,
            "actor started, first call answered": self.actor_answered,
            "actor killed, placement group removed": self.gone,
        }


def bare_actor_run(bundle: dict[str, float]) -> BareActorRun:
    """What the ray backend asks of Ray for one host, with a trivial actor: a placement group of
    one `bundle`, a detached actor in it with the bundle's resources, one call, then the actor
    killed and the group removed. Needs ray initialised."""
    import ray
    from ray.util.placement_group import placement_group, remove_placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    # Defined here, so Ray ships the class by value: the workers cannot import this module.
    class Trivial:
        def node(self) -> str:
            return str(ray.get_runtime_context().get_node_id())

    start = time.perf_counter()
    group = placement_group([bundle], strategy="SPREAD")
    if not group.wait(timeout_seconds=HOLD_SECONDS):
        raise RuntimeError(f"a placement group of {bundle} was not ready in {HOLD_SECONDS:g} s")
    ready = time.perf_counter()
    actor: Any = (
        ray.remote(Trivial)
        .options(
            lifetime="detached",
            max_concurrency=8,  # as the ray backend's actors: a threaded actor
            num_cpus=bundle["CPU"],
            memory=bundle.get("memory"),
            max_restarts=0,
            scheduling_strategy=PlacementGroupSchedulingStrategy(group, 0),
        )
        .remote()
    )
    ray.get(actor.node.remote(), timeout=HOLD_SECONDS)
    answered = time.perf_counter()
    ray.kill(actor, no_restart=True)
    remove_placement_group(group)
    _wait_removed(group)
    gone = time.perf_counter()
    return BareActorRun((ready - start) * 1000, (answered - ready) * 1000, (gone - answered) * 1000)


def _wait_removed(group: Any) -> None:
    """Until Ray has taken the group back, so what it held is free when this returns."""
    from ray.util.placement_group import placement_group_table

    deadline = time.monotonic() + HOLD_SECONDS
    while time.monotonic() < deadline:
        if placement_group_table(group).get("state") == "REMOVED":
            return
        time.sleep(0.05)
