"""A node that does not see the server's DOCKYARD_HOME (its own file system there, as a machine
without the shared mount would have): a job placed on it fails at start with a reason saying
what to set up, and leaves nothing on the cluster."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.backends.ray_backend import ray_namespace
from tests.backends.test_ray_kill9 import _groups, _named_actors
from tests.conftest import RunningServer, make_image, training_request, wait_for_job
from tests.ray_cluster import GIB, RayCluster

pytestmark = pytest.mark.slow

BLIND_IP = "127.0.0.5"
# Only the blind node has this type's resource, so its hosts can only go there.
BLIND_TYPE = "ml.c5.xlarge"


@pytest.fixture
def blind_node(ray_cluster: RayCluster, tmp_path: Path) -> Iterator[str]:
    """A node joined with `ray start` in a mount namespace of its own where a tmpfs covers the
    tests' temporary folders (every DOCKYARD_HOME of the tests is under them)."""
    import ray

    covered = Path(tmp_path.parts[0], *tmp_path.parts[1:3])  # /tmp/pytest-of-<user>
    ray_bin = Path(sys.executable).with_name("ray")
    script = (
        f"mount -t tmpfs dockyard-blind {covered} && "
        f"exec {ray_bin} start --block --address={ray_cluster.address} "
        f"--node-ip-address={BLIND_IP} --num-cpus=4 --memory={9 * GIB} "
        f"--object-store-memory={100 * 1024**2} --resources='{json.dumps({BLIND_TYPE: 1})}'"
    )
    node = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while BLIND_IP not in ray_cluster.node_ips():
            assert node.poll() is None, "the blind node's ray start ended"
            assert time.monotonic() < deadline, "the blind node never joined"
            time.sleep(0.5)
        yield BLIND_IP
    finally:
        os.killpg(node.pid, signal.SIGTERM)  # ray start --block stops its node's processes
        try:
            node.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(node.pid, signal.SIGKILL)
            node.wait()
        deadline = time.monotonic() + 60
        while any(n["NodeManagerAddress"] == BLIND_IP and n["Alive"] for n in ray.nodes()):
            assert time.monotonic() < deadline, "the blind node is still alive"
            time.sleep(0.5)


def test_a_node_without_the_shared_home_fails_the_job_saying_what_to_set_up(
    ray_server: RunningServer, blind_node: str, tmp_path: Path
) -> None:
    image = make_image(tmp_path / "image", "print('runs')\n")
    sagemaker = ray_server.client("sagemaker")
    blind = training_request("on-the-blind-node", image)
    blind["ResourceConfig"]["InstanceType"] = BLIND_TYPE
    sagemaker.create_training_job(**blind)
    described = wait_for_job(sagemaker, "on-the-blind-node", deadline_seconds=120)
    assert described["TrainingJobStatus"] == "Failed"
    reason = described["FailureReason"]
    assert reason.startswith(f"InternalServerError: the Ray node {blind_node} does not see"), reason
    assert f"DOCKYARD_HOME at {ray_server.settings.home}" in reason
    assert "Mount the same folder" in reason
    # Nothing of the job is left on the cluster: its actor and placement group are gone.
    namespace = ray_namespace(ray_server.settings)
    assert _named_actors(namespace) == []
    assert _groups(f"dockyard:{namespace}:") == []
