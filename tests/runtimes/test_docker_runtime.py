"""The docker runtime on a real engine (podman's service): hosts reaching each other by name, the
memory limit and OOM, SIGTERM then SIGKILL, output as it comes, what a container is made with, no
host loopback, and nothing labelled left after release or recover."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.contract.errors import ImageError, SandboxError
from dockyard.runtimes.base import HostSpec, Limits
from dockyard.runtimes.docker_images import HOME_LABEL
from dockyard.runtimes.docker_networks import DockerNetwork
from dockyard.runtimes.docker_runtime import DockerRuntime
from tests.containers import labelled
from tests.runtimes.output import Output

VOLUME = 256 << 20
MIB = 1 << 20


class Job:
    """Hosts started on one network of a runtime; everything is released after the test."""

    def __init__(self, runtime: DockerRuntime, image: str, root: Path, *, outside: bool) -> None:
        self.runtime = runtime
        self.image = runtime.prepare_image(
            runtime.resolve(image, lambda what, path: path),
            code=None,
            purpose="train",
            log=lambda line: None,
        )
        self.root = root
        self.network = runtime.create_network(outside=outside)
        self.folders: list[Any] = []
        self.hosts: list[Any] = []

    def start(
        self,
        hostname: str,
        script: str,
        *,
        hosts: dict[str, str] | None = None,
        limits: Limits | None = None,
    ) -> tuple[Any, Output]:
        folder = self.runtime.prepare_host(self.root / hostname, VOLUME)
        self.folders.append(folder)
        spec = HostSpec(
            image=self.image,
            argv=self.image.command(["sh", "-c", script], None, "train"),
            hostname=hostname,
            folder=folder,
            network=self.network,
            hosts=hosts or self.network.host_addresses([hostname]),
            limits=limits or Limits(),
        )
        output = Output()
        host = self.runtime.start(spec, output)
        self.hosts.append(host)
        return host, output

    def close(self) -> None:
        for host in self.hosts:
            host.kill()
            host.wait(timeout=30)
        self.network.close()
        for folder in self.folders:
            folder.remove()


@pytest.fixture
def runtime(container_engine: Any, clean_env: Path) -> DockerRuntime:
    return DockerRuntime(container_engine.docker_host, clean_env)


@pytest.fixture
def job(runtime: DockerRuntime, busybox: str, tmp_path: Path) -> Iterator[Job]:
    made = Job(runtime, busybox, tmp_path / "jobs" / "job-1", outside=False)
    yield made
    made.close()


def test_two_hosts_reach_each_other_by_name(job: Job) -> None:
    addresses = job.network.host_addresses(["algo-1", "algo-2"])
    first, first_out = job.start(
        "algo-1",
        # The handler reads to the end: nc alone may close on its own empty stdin first.
        'echo "I am $(hostname)"; nc -l -p 9000 -e sh -c "cat > /tmp/got"; cat /tmp/got',
        hosts=addresses,
    )
    first_out.wait_for("I am algo-1")
    second, second_out = job.start(
        "algo-2",
        # algo-1 may not listen yet when algo-2 starts: retry as a training program would.
        "for i in $(busybox seq 50); do echo hello-from-algo-2 | nc algo-1 9000 && exit 0;"
        " sleep 0.2; done; exit 1",
        hosts=addresses,
    )
    assert second.wait(timeout=60) == 0, second_out.lines
    assert first.wait(timeout=30) == 0
    assert "hello-from-algo-2" in first_out.stdout
    assert len(set(addresses.values())) == 2


def test_a_host_past_its_memory_limit_ends_137_out_of_memory(job: Job) -> None:
    host, output = job.start(
        "algo-1",
        'echo start; x=aaaaaaaa; while true; do x="$x$x"; done',
        limits=Limits(memory_bytes=32 * MIB),
    )
    assert host.wait(timeout=60) == 137, output.lines
    assert host.out_of_memory
    # podman on cgroup v1 (this machine) reports OOMKilled false: the exit is what tells.


def test_sigterm_then_kill_after_the_grace_period(job: Job) -> None:
    graceful, graceful_out = job.start(
        "algo-1", "trap 'echo got TERM; exit 0' TERM; echo ready; while true; do sleep 1; done"
    )
    stubborn, stubborn_out = job.start(
        "algo-2",
        "trap '' TERM; echo ready; while true; do sleep 1; done",
        limits=Limits(memory_bytes=64 * MIB),
    )
    graceful_out.wait_for("ready")
    stubborn_out.wait_for("ready")
    graceful.signal(signal.SIGTERM)
    stubborn.signal(signal.SIGTERM)
    assert graceful.wait(timeout=30) == 0
    assert "got TERM" in graceful_out.stdout
    assert stubborn.wait(timeout=2) is None  # ignores SIGTERM: still running after the grace
    stubborn.kill()
    assert stubborn.wait(timeout=30) == 128 + signal.SIGKILL
    assert not stubborn.out_of_memory  # dockyard's own SIGKILL, not the kernel's


def test_a_program_of_the_image_is_looked_for_once_one_on_a_volume_every_time(
    job: Job, runtime: DockerRuntime
) -> None:
    """The image's files are fixed by its id; what a host's volume holds is not."""
    heads: list[object] = []
    head = runtime.client.api.head

    def counted(*args: Any, **kwargs: Any) -> Any:
        heads.append(args)
        return head(*args, **kwargs)

    runtime.client.api.head = counted  # type: ignore[method-assign]
    for hostname in ("algo-1", "algo-2"):
        host, _ = job.start(hostname, "exit 0")
        assert host.wait(timeout=60) == 0
    assert len(heads) == 1  # `sh`, found in the image for algo-1, is not looked for again

    def volume_host(hostname: str, program: str | None) -> HostSpec:
        folder = runtime.prepare_host(job.root / hostname, VOLUME)
        job.folders.append(folder)
        folder.opt_ml.mkdir(parents=True, exist_ok=True)
        if program is not None:
            (folder.opt_ml / "run").write_text(program)
            (folder.opt_ml / "run").chmod(0o755)
        return HostSpec(
            image=job.image,
            argv=["/opt/ml/run"],
            hostname=hostname,
            folder=folder,
            network=job.network,
            hosts=job.network.host_addresses([hostname]),
        )

    job.hosts.append(runtime.start(volume_host("algo-3", "#!/bin/sh\nexit 5\n"), Output()))
    assert job.hosts[-1].wait(timeout=60) == 5
    with pytest.raises(ImageError, match="/opt/ml/run is not in the image"):
        runtime.start(volume_host("algo-4", None), Output())


def test_output_is_streamed_as_it_comes_on_each_stream(job: Job) -> None:
    host, output = job.start("algo-1", "echo first; echo oops >&2; sleep 300")
    output.wait_for("first")
    deadline = time.monotonic() + 10
    while ("stderr", "oops") not in output.lines:
        assert time.monotonic() < deadline, output.lines
        time.sleep(0.05)
    assert host.returncode is None  # still running: the lines came before the exit


def test_what_a_container_is_made_with(
    job: Job, runtime: DockerRuntime, container_engine: Any
) -> None:
    host, output = job.start(
        "algo-1",
        "hostname; grep NoNewPrivs /proc/self/status; cat /proc/1/comm; "
        "touch /opt/ml/written && echo opt_ml-writable; busybox df -k /dev/shm; "
        "echo ready; sleep 300",
        limits=Limits(cpus=1.5, memory_bytes=128 * MIB, pids=100),
    )
    output.wait_for("ready")
    attrs = container_engine.client.api.inspect_container(host.container_id)
    labels = attrs["Config"]["Labels"]
    assert labels[HOME_LABEL] == str(runtime.home)
    assert labels["dockyard.folder"] == str(job.folders[0].root)
    assert labels["dockyard.host"] == "algo-1"
    assert labels["dockyard.role"] == "train"
    config = attrs["HostConfig"]
    assert config["Memory"] == config["MemorySwap"] == 128 * MIB  # no swap
    assert config["NanoCpus"] == 1_500_000_000
    assert config["PidsLimit"] == 100
    assert config["ShmSize"] == 128 * MIB
    assert not config["Privileged"]
    assert "algo-1" in output.stdout
    assert "NoNewPrivs:\t1" in output.stdout
    assert "opt_ml-writable" in output.stdout
    assert (job.folders[0].opt_ml / "written").exists()  # /opt/ml is the host's volume
    network = container_engine.client.api.inspect_network(job.network.name)
    assert network["Labels"][HOME_LABEL] == str(runtime.home)
    assert network["Internal"] is True


def test_no_host_loopback(runtime: DockerRuntime, busybox: str, tmp_path: Path) -> None:
    """A server on the host's 127.0.0.1 is reachable neither through the bridge's gateway nor
    the host's own address, with outside access or without."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted: list[Any] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except TimeoutError:
                continue

    acceptor = threading.Thread(target=accept, daemon=True)
    acceptor.start()
    host_address = _host_address()
    try:
        for outside in (True, False):
            made = Job(runtime, busybox, tmp_path / f"outside-{outside}", outside=outside)
            try:
                gateway = _gateway(made.network)
                targets = [gateway, "127.0.0.1", host_address]
                script = "".join(
                    f"(nc {target} {port} </dev/null && echo CONNECTED-{target}) & "
                    for target in targets
                )
                host, output = made.start("algo-1", script + "sleep 4; echo done")
                assert host.wait(timeout=60) == 0, output.lines
                assert "done" in output.stdout
                assert not [line for line in output.stdout if line.startswith("CONNECTED")]
            finally:
                made.close()
        assert accepted == []
    finally:
        stop.set()
        acceptor.join()  # before the socket closes under its accept()
        server.close()


def _gateway(network: DockerNetwork) -> str:
    attrs = network.client.api.inspect_network(network.name)
    return str(attrs["IPAM"]["Config"][0]["Gateway"])


def _host_address() -> str:
    """This machine's address on its outside interface."""
    routes = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=True)
    for link in json.loads(routes.stdout):
        for address in link.get("addr_info", []):
            if not address["local"].startswith("127.") and link["ifname"].startswith(("eth", "en")):
                return str(address["local"])
    return "127.0.0.1"


def test_release_and_recover_leave_nothing_labelled(
    runtime: DockerRuntime, container_engine: Any, busybox: str, tmp_path: Path
) -> None:
    home = runtime.home
    first = Job(runtime, busybox, home / "jobs" / "job-1", outside=False)
    first.start("algo-1", "echo ready; sleep 300")[1].wait_for("ready")
    second = Job(runtime, busybox, home / "jobs" / "job-2", outside=True)
    second.start("algo-1", "echo ready; sleep 300")[1].wait_for("ready")
    assert len(labelled("container", home)) == 2
    assert len(labelled("network", home)) == 2
    # A server killed mid-job: its job folder is released before it is deleted.
    runtime.release(home / "jobs" / "job-1")
    assert len(labelled("container", home)) == 1
    assert labelled("network", home) == [second.network.name]
    assert not os.path.ismount(first.folders[0].root)
    # A server killed with -9 and started again: a new runtime recovers the same home.
    DockerRuntime(container_engine.docker_host, home).recover(home)
    assert labelled("container", home) == []
    assert labelled("network", home) == []
    assert not os.path.ismount(second.folders[0].root)
    for host in (*first.hosts, *second.hosts):
        assert host.wait(timeout=30) is not None


def test_check_says_what_build_would_do_and_build_makes_it(
    runtime: DockerRuntime, busybox: str, tmp_path: Path
) -> None:
    folder = tmp_path / "image"
    folder.mkdir()
    # Unique content: a tag no earlier run has built.
    (folder / "Dockerfile").write_text(f"FROM {busybox}\nRUN echo {tmp_path.name} > /made\n")
    image = runtime.resolve(str(folder), lambda what, path: path)
    before = runtime.check_image(image)
    assert before.python_layer["Status"] == "NotBuilt"
    assert [line.line for line in before.run_lines] == [f"RUN echo {tmp_path.name} > /made"]
    lines: list[str] = []
    try:
        runtime.build_image(image, lines.append)
        assert runtime.check_image(image).python_layer["Status"] == "Built"
        assert any("RUN echo" in line for line in lines), lines
    finally:
        runtime.client.images.remove(str(before.python_layer["Image"]), force=True)


def test_leftovers_go_before_the_first_network_when_the_engine_answers_late(
    runtime: DockerRuntime, container_engine: Any, busybox: str, tmp_path: Path
) -> None:
    home = runtime.home
    left = Job(runtime, busybox, home / "jobs" / "left", outside=False)
    host, output = left.start("algo-1", "echo ready; sleep 300")
    output.wait_for("ready")
    # The next server's engine is not there yet when it starts: its recover says so...
    late = tmp_path / "late.sock"
    restarted = DockerRuntime(f"unix://{late}", home)
    with pytest.raises(SandboxError, match=r"no Docker engine at unix://.*late\.sock"):
        restarted.recover(home)
    assert labelled("container", home) != []
    assert not os.path.ismount(left.folders[0].root)  # the volumes went all the same
    # ...then the engine answers: the leftovers go before the server's first network is made,
    # and what this server makes stays.
    late.symlink_to(container_engine.docker_host.removeprefix("unix://"))
    now = Job(restarted, busybox, home / "jobs" / "now", outside=False)
    try:
        assert labelled("network", home) == [now.network.name]
        assert labelled("container", home) == []
        assert host.wait(timeout=30) is not None
        now.start("algo-1", "echo ready; sleep 300")[1].wait_for("ready")
        restarted.create_network(outside=False).close()  # removes nothing now
        assert len(labelled("container", home)) == 1
    finally:
        now.close()
