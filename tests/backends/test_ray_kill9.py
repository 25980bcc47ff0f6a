"""`kill -9` of a real server process whose job runs on the Ray cluster: the job's actors (and
its sandbox) outlive the server, as detached actors do, and the next server on the same home
closes them (sandbox killed, volume unmounted, network removed), removes the placement group and
fails the job with a reason: nothing is left on any node."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from dockyard.backends.ray_backend import ray_namespace
from dockyard.client.local_server import start_background
from dockyard.runtimes.volumes import mount_points
from dockyard.settings import Settings
from tests.api.test_docker_kill9 import _clients, _gone, _log_has, _stop, _wait
from tests.conftest import free_port, make_image, training_request, wait_for_job
from tests.ray_cluster import RayCluster

pytestmark = pytest.mark.slow

SLEEPER = """
import socket, time
print("training started on", socket.gethostname(), flush=True)
time.sleep(600)
"""


def _named_actors(namespace: str) -> list[str]:
    import ray

    return [
        a["name"]
        for a in ray.util.list_named_actors(all_namespaces=True)
        if a["namespace"] == namespace
    ]


def _groups(prefix: str) -> list[str]:
    import ray

    return [
        info["name"]
        for info in ray.util.placement_group_table().values()
        if (info.get("name") or "").startswith(prefix) and info.get("state") != "REMOVED"
    ]


def _host_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()} - {""}


def _sandboxes_of(home: Path) -> list[int]:
    """Processes whose command line names a folder under `home` (bwrap binds the host's)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(home).encode() in cmdline and b"bwrap" in cmdline:
            found.append(int(entry.name))
    return found


def test_kill_9_mid_job_then_a_restart_leaves_nothing_on_the_cluster(
    ray_cluster: RayCluster,
    clean_env: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    postgres_url: str,
) -> None:
    import ray

    monkeypatch.setenv("DOCKYARD_DATABASE_URL", postgres_url)
    monkeypatch.setenv("DOCKYARD_BACKEND", "ray")
    monkeypatch.setenv("DOCKYARD_RAY_ADDRESS", ray_cluster.address)
    monkeypatch.setenv("DOCKYARD_STOP_GRACE_SECONDS", "2")
    if not ray.is_initialized():  # this test reads the cluster's actors as a driver of its own
        ray.init(address=ray_cluster.address, log_to_driver=False)
    settings = Settings(home=clean_env, port=free_port(), database_url=postgres_url)
    namespace = ray_namespace(settings)
    prefix = f"dockyard:{namespace}:"
    links_before = _host_links()
    image = make_image(tmp_path / "image", SLEEPER)
    first = start_background(settings)
    second_pid = None
    try:
        sagemaker, _, logs = _clients(first.url, settings)
        request = training_request("cut-short", image)
        request["ResourceConfig"]["InstanceCount"] = 2
        sagemaker.create_training_job(**request)
        for host in ("algo-1", "algo-2"):
            _wait(lambda h=host: _log_has(logs, "cut-short", f"training started on {h}"), host)
        assert sorted(_named_actors(namespace)) == ["cut-short/algo-1", "cut-short/algo-2"]
        assert len(_groups(prefix)) == 1
        assert len(_sandboxes_of(clean_env)) >= 2
        assert [m for m in mount_points() if m.startswith(str(clean_env))]
        assert len(_host_links() - links_before) == 2  # each host's veth on its node

        os.kill(first.pid, signal.SIGKILL)
        _wait(lambda: _gone(first.pid), "the killed server is still there", 10)
        time.sleep(1.0)
        # Detached actors outlive their driver: the hosts still run.
        assert sorted(_named_actors(namespace)) == ["cut-short/algo-1", "cut-short/algo-2"]
        assert len(_sandboxes_of(clean_env)) >= 2

        second = start_background(settings)
        second_pid = second.pid
        sagemaker, _, _ = _clients(second.url, settings)
        described = wait_for_job(sagemaker, "cut-short", deadline_seconds=60)
        assert described["TrainingJobStatus"] == "Failed"
        assert "server stopped while this job was running" in described["FailureReason"]
        _wait(lambda: not _named_actors(namespace), "actors left on the cluster", 30)
        assert _groups(prefix) == []
        assert _sandboxes_of(clean_env) == []
        assert [m for m in mount_points() if m.startswith(str(clean_env))] == []
        assert _host_links() - links_before == set()
    finally:
        _stop(first.pid)
        if second_pid is not None:
            _stop(second_pid)
