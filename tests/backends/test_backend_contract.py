"""The backend contract, the same on `local` (this machine) and `ray` (a real two-node Ray
cluster): place a job's hosts all at once or wait, make each one's folder on its node, get the
image ready there, start the hosts, stream their output, signal them, collect what they wrote,
and leave nothing behind."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.backends.base import Backend, HostRun, ImageUse, PlacementRequest
from dockyard.backends.capacity import Capacity
from dockyard.backends.local import LocalBackend
from dockyard.contract.instance_types import instance_type
from dockyard.contract.opt_ml import OptMl
from dockyard.runtimes.factory import Runtimes
from dockyard.runtimes.volumes import mount_points
from dockyard.settings import Settings
from tests.conftest import make_image
from tests.ray_cluster import RayCluster

pytestmark = pytest.mark.slow

GIB = 1024**3

PROGRAM = """
import os, pathlib, socket, sys, time
host = socket.gethostname()
print("hello from", host, flush=True)
print("to stderr", file=sys.stderr, flush=True)
staged = pathlib.Path("/opt/ml/input/config/staged.txt").read_text()
pathlib.Path("/opt/ml/model", host + ".txt").write_text(staged + " " + host)
if os.environ.get("SLEEP"):
    time.sleep(float(os.environ["SLEEP"]))
sys.exit(int(os.environ.get("EXIT", "0")))
"""


@pytest.fixture(params=["local", "ray"])
def backend(request: pytest.FixtureRequest, clean_env: Path) -> Iterator[Backend]:
    settings = Settings(home=clean_env, stop_grace_seconds=2.0)
    if request.param == "local":
        # Room for exactly two ml.m5.large hosts, as the two-node cluster has.
        made: Backend = LocalBackend(Runtimes(settings), Capacity(4, 16.0))
    else:
        cluster: RayCluster = request.getfixturevalue("ray_cluster")
        from dockyard.backends.ray_backend import RayBackend

        made = RayBackend(settings.model_copy(update={"ray_address": cluster.address}))
    yield made
    made.close()


def two_hosts(owner: str, **changes: Any) -> PlacementRequest:
    fields: dict[str, Any] = {
        "owner": owner,
        "hosts": ["algo-1", "algo-2"],
        "instance": instance_type("ml.m5.large"),
        "runtime": "process",
        "outside": False,
    }
    fields.update(changes)
    return PlacementRequest(**fields)


def never_cancelled() -> bool:
    return False


def run_hosts(
    backend: Backend, tmp_path: Path, owner: str, env: dict[str, str]
) -> tuple[Any, dict[str, Any], dict[str, list[tuple[str, str]]]]:
    placement = backend.place(two_hosts(owner), on_wait=print, cancelled=never_cancelled)
    assert placement is not None
    image = make_image(tmp_path / "image", PROGRAM)
    for host in placement.hosts:
        volume = placement.prepare(host, tmp_path / owner / host, GIB)
        opt_ml = OptMl(volume.opt_ml)
        opt_ml.create()
        (opt_ml.config_dir / "staged.txt").write_text(f"staged for {host}")
        placement.load(host)
    argv = placement.prepare_image(
        ImageUse(str(image), "process", "train"), lambda _what, path: path, print
    )
    output: dict[str, list[tuple[str, str]]] = {h: [] for h in placement.hosts}
    running = {
        host: placement.start(
            host,
            HostRun(argv=argv, env=env),
            lambda stream, line, host=host: output[host].append((stream, line)),
        )
        for host in placement.hosts
    }
    return placement, running, output


def test_hosts_run_where_placed_stream_output_and_give_back_what_they_wrote(
    backend: Backend, tmp_path: Path
) -> None:
    placement, running, output = run_hosts(backend, tmp_path, "contract-ok", {})
    try:
        assert {h: r.wait(timeout=120) for h, r in running.items()} == {"algo-1": 0, "algo-2": 0}
        for host in placement.hosts:
            assert ("stdout", f"hello from {host}") in output[host]
            assert ("stderr", "to stderr") in output[host]
            collected = placement.collect(host, tmp_path / "collected")
            written = (collected.model_dir / f"{host}.txt").read_text()
            assert written == f"staged for {host} {host}"
        nodes = {placement.node_of(h).address for h in placement.hosts}
        if backend.name == "ray":
            assert nodes == {"127.0.0.2", "127.0.0.3"}  # one ml.m5.large fills a node
        addresses = placement.host_addresses()
        assert set(addresses) == {"algo-1", "algo-2"}
        assert len(set(addresses.values())) == 2
    finally:
        placement.release()
    assert not [m for m in mount_points() if m.startswith(str(tmp_path))]
    placement.release()  # idempotent


def test_exit_codes_and_signals_reach_the_hosts(backend: Backend, tmp_path: Path) -> None:
    placement, running, _ = run_hosts(backend, tmp_path, "contract-signal", {"SLEEP": "60"})
    try:
        assert running["algo-1"].wait(timeout=3) is None  # still sleeping
        running["algo-1"].signal(signal.SIGTERM)
        running["algo-2"].kill()
        assert running["algo-1"].wait(timeout=60) == 128 + signal.SIGTERM
        assert running["algo-2"].wait(timeout=60) == 128 + signal.SIGKILL
        assert running["algo-1"].returncode == 128 + signal.SIGTERM
    finally:
        placement.release()


def test_a_request_that_does_not_fit_yet_waits_until_cancelled(
    backend: Backend, tmp_path: Path
) -> None:
    held = backend.place(two_hosts("contract-holder"), on_wait=print, cancelled=never_cancelled)
    assert held is not None
    try:
        told: list[str] = []
        cancel = threading.Event()
        threading.Timer(3.0, cancel.set).start()
        waiting = backend.place(
            two_hosts("contract-waiter"), on_wait=told.append, cancelled=cancel.is_set
        )
        assert waiting is None
        assert len(told) == 1 and "Waiting for capacity" in told[0]
    finally:
        held.release()
    # Given back: the same request fits at once now.
    again = backend.place(
        two_hosts("contract-again"), on_wait=pytest.fail, cancelled=never_cancelled
    )
    assert again is not None
    again.release()
