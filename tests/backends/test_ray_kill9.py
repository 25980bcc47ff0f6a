"""`kill -9` of a real server process whose job runs on the Ray cluster: the job's actors (and
their sandboxes) outlive the server, as detached actors do; the next server on the same home
re-attaches to them, reads their output from where the killed one stopped, and the job
completes; then nothing of it is left on any node (actor, placement group, sandbox, volume,
network)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest

from dockyard.backends.ray_backend import ray_namespace
from dockyard.client.local_server import start_background
from dockyard.runtimes.routed_state import STATE_DIR as ROUTED_RECORDS
from dockyard.runtimes.volumes import mount_points
from dockyard.settings import Settings
from tests.api.test_docker_kill9 import _clients, _log_has, _wait
from tests.conftest import free_port, make_image, training_request, wait_for_job
from tests.processes import gone, stop
from tests.ray_cluster import RayCluster

pytestmark = pytest.mark.slow

SLOW = """
import pathlib, socket, time
host = socket.gethostname()
print("training started on", host, flush=True)
time.sleep(12)
print("training ends on", host, flush=True)
pathlib.Path("/opt/ml/model", host + ".txt").write_text("trained on " + host)
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


def _host_links(hosts_cidr: str) -> set[str]:
    """The veths on this machine of routed networks in `hosts_cidr` (their records name it)."""
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    links = {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}
    records = [json.loads(p.read_text()) for p in ROUTED_RECORDS.glob("*.json")]
    return {r["link"] for r in records if r["hosts_cidr"] == hosts_cidr} & links


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


def model_artifacts_of(sagemaker: Any, settings: Settings, job: str) -> dict[str, bytes]:
    """The files of the job's model.tar.gz, read from the server's local store."""
    uri = sagemaker.describe_training_job(TrainingJobName=job)["ModelArtifacts"]
    bucket, key = uri["S3ModelArtifacts"].removeprefix("s3://").split("/", 1)
    with tarfile.open(settings.store_root / bucket / key) as tar:
        return {
            m.name.removeprefix("./"): tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def test_kill_9_mid_job_then_a_restart_reattaches_and_the_job_completes(
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
    # A range of this test's own, so routed networks of other runs on the machine are not
    # counted as its.
    hosts_cidr = f"10.{random.randrange(208, 224)}.{16 * random.randrange(16)}.0/20"
    monkeypatch.setenv("DOCKYARD_HOSTS_CIDR", hosts_cidr)
    settings = Settings(
        home=clean_env, port=free_port(), database_url=postgres_url, hosts_cidr=hosts_cidr
    )
    namespace = ray_namespace(settings)
    prefix = f"dockyard:{namespace}:"
    image = make_image(tmp_path / "image", SLOW)
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
        assert len(_host_links(hosts_cidr)) == 2  # each host's veth on its node

        os.kill(first.pid, signal.SIGKILL)
        _wait(lambda: gone(first.pid), "the killed server is still there", 10)
        time.sleep(1.0)
        # Detached actors outlive their driver: the hosts still run.
        assert sorted(_named_actors(namespace)) == ["cut-short/algo-1", "cut-short/algo-2"]
        assert len(_sandboxes_of(clean_env)) >= 2

        second = start_background(settings)
        second_pid = second.pid
        sagemaker, _, logs = _clients(second.url, settings)
        described = wait_for_job(sagemaker, "cut-short", deadline_seconds=120)
        assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
        for host in ("algo-1", "algo-2"):  # printed after the kill, read by the new server
            assert _log_has(logs, "cut-short", f"training ends on {host}")
        assert _log_has(logs, "cut-short", "re-attached to the hosts still running")
        model = model_artifacts_of(sagemaker, settings, "cut-short")
        assert model == {"algo-1.txt": b"trained on algo-1", "algo-2.txt": b"trained on algo-2"}
        _wait(lambda: not _named_actors(namespace), "actors left on the cluster", 30)
        assert _groups(prefix) == []
        assert _sandboxes_of(clean_env) == []
        assert [m for m in mount_points() if m.startswith(str(clean_env))] == []
        assert _host_links(hosts_cidr) == set()
    finally:
        stop(first.pid)
        if second_pid is not None:
            stop(second_pid)
