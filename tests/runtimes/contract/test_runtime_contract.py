"""The runtime contract: what the engine asks of every runtime, run against each one (the process
runtime's sandboxes, the docker runtime's containers on podman's service), through the interface
alone and with real hosts."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dockyard.contract.errors import ImageError, ValidationError
from dockyard.engine.local_paths import LocalPaths
from dockyard.runtimes.base import FolderCheck, HostNetwork, HostSpec, HostVolume, Runtime
from dockyard.runtimes.factory import open_runtime
from dockyard.runtimes.volumes import mount_points
from dockyard.settings import Settings
from tests.runtimes.output import Output

RUNTIMES = ["process", "docker"]
VOLUME = 1 << 30
# One image for every test: `train` prints a line on each stream and exits with the code it is
# given, `serve` answers HTTP on 8080 (busybox's httpd: busybox-static on the host for the process
# runtime, the busybox image for the docker runtime), `sleep` waits to be signalled.
PROGRAM = """#!/bin/sh
case "$1" in
  train) echo "out line"; echo "err line" >&2; exit "${EXIT_CODE:-0}" ;;
  serve) exec busybox httpd -f -p 8080 -h /opt/program/www ;;
  sleep) echo ready; exec sleep 300 ;;
esac
exit 64
"""


@pytest.fixture(params=RUNTIMES)
def runtime_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def base_image(runtime_name: str, request: pytest.FixtureRequest) -> str:
    """What the image folder's Dockerfile starts FROM: the process runtime's base is this machine
    whatever FROM says; the docker runtime builds on the test busybox image."""
    if runtime_name == "docker":
        return str(request.getfixturevalue("busybox"))
    return "debian:stable-slim"


@pytest.fixture
def runtime(runtime_name: str, request: pytest.FixtureRequest) -> Runtime:
    if runtime_name == "docker":
        engine = request.getfixturevalue("container_engine")
        return open_runtime(Settings(runtime="docker", docker_host=engine.docker_host))
    return open_runtime(Settings(runtime=runtime_name))


@pytest.fixture
def readable(tmp_path: Path) -> FolderCheck:
    """The engine's rule: only tmp_path may be read (and not dockyard's own home)."""
    return LocalPaths.of([tmp_path / "allowed"], [Settings().home]).readable


@pytest.fixture
def image_folder(tmp_path: Path, base_image: str) -> Path:
    folder = tmp_path / "allowed" / "image"
    (folder / "www").mkdir(parents=True)
    (folder / "program.sh").write_text(PROGRAM)
    (folder / "www" / "index.html").write_text("contract\n")
    (folder / "Dockerfile").write_text(
        f"FROM {base_image}\nCOPY program.sh /opt/program/program.sh\n"
        "COPY www /opt/program/www\n"
        'ENTRYPOINT ["/bin/sh", "/opt/program/program.sh"]\n'
    )
    return folder


class Made:
    """What a test made through the runtime, released in reverse order afterwards."""

    def __init__(self) -> None:
        self.cleanups: list[Callable[[], None]] = []

    def close(self) -> None:
        while self.cleanups:
            self.cleanups.pop()()


@pytest.fixture
def made() -> Iterator[Made]:
    made = Made()
    yield made
    made.close()


def start_host(
    runtime: Runtime,
    readable: FolderCheck,
    image_folder: Path,
    tmp_path: Path,
    made: Made,
    command: str,
    *,
    env: dict[str, str] | None = None,
) -> tuple[HostSpec, Output]:
    image = runtime.prepare_image(
        runtime.resolve(str(image_folder), readable),
        code=None,
        purpose="train",
        log=lambda line: None,
    )
    folder = runtime.prepare_host(tmp_path / "host", VOLUME)
    made.cleanups.append(folder.remove)
    network = runtime.create_network(outside=False)
    made.cleanups.append(network.close)
    spec = HostSpec(
        image=image,
        argv=image.command(None, None, command),
        hostname="algo-1",
        folder=folder,
        network=network,
        env=env or {},
        hosts=network.host_addresses(["algo-1"]),
    )
    return spec, Output()


def group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def mounts_under(folder: Path) -> list[str]:
    return [p for p in mount_points() if p == str(folder) or p.startswith(f"{folder}/")]


# -- images ------------------------------------------------------------------------------------


def test_resolves_an_image_folder(
    runtime: Runtime, readable: FolderCheck, image_folder: Path
) -> None:
    image = runtime.resolve(str(image_folder), readable)
    assert image.ref == str(image_folder)
    image.check_command(None, None, "train")  # the image has an ENTRYPOINT: nothing to refuse


def test_refuses_a_folder_without_a_dockerfile(
    runtime: Runtime, readable: FolderCheck, image_folder: Path
) -> None:
    (image_folder / "Dockerfile").unlink()
    with pytest.raises(ImageError, match="Dockerfile"):
        runtime.resolve(str(image_folder), readable)


def test_refuses_a_folder_the_engine_may_not_read(
    runtime: Runtime, readable: FolderCheck, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "Dockerfile").write_text('FROM x\nCMD ["true"]\n')
    with pytest.raises(ValidationError, match="image"):
        runtime.resolve(str(outside), readable)


def test_refuses_a_folder_that_does_not_exist(
    runtime: Runtime, readable: FolderCheck, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        runtime.resolve(str(tmp_path / "allowed" / "missing"), readable)


# -- hosts -------------------------------------------------------------------------------------


def test_a_program_missing_from_the_image_is_refused_at_start(
    runtime: Runtime,
    readable: FolderCheck,
    image_folder: Path,
    tmp_path: Path,
    made: Made,
    base_image: str,
) -> None:
    (image_folder / "Dockerfile").write_text(f"FROM {base_image}\n")
    spec, output = start_host(runtime, readable, image_folder, tmp_path, made, "train")
    assert spec.argv == ["train"]  # SageMaker's contract: `train` is the command
    with pytest.raises(ImageError, match="train"):
        runtime.start(spec, output)


def test_a_host_runs_to_its_exit_code_and_streams_its_output(
    runtime: Runtime, readable: FolderCheck, image_folder: Path, tmp_path: Path, made: Made
) -> None:
    spec, output = start_host(
        runtime, readable, image_folder, tmp_path, made, "train", env={"EXIT_CODE": "3"}
    )
    host = runtime.start(spec, output)
    assert host.wait(timeout=30) == 3
    assert host.returncode == 3
    assert ("stdout", "out line") in output.lines
    assert ("stderr", "err line") in output.lines
    assert not host.out_of_memory


def test_sigterm_ends_a_host_with_128_plus_15(
    runtime: Runtime, readable: FolderCheck, image_folder: Path, tmp_path: Path, made: Made
) -> None:
    spec, output = start_host(runtime, readable, image_folder, tmp_path, made, "sleep")
    host = runtime.start(spec, output)
    output.wait_for("ready")
    assert host.returncode is None
    host.signal(signal.SIGTERM)
    assert host.wait(timeout=30) == 128 + signal.SIGTERM


def test_kill_ends_a_host_and_nothing_of_it_is_left(
    runtime: Runtime, readable: FolderCheck, image_folder: Path, tmp_path: Path, made: Made
) -> None:
    spec, output = start_host(runtime, readable, image_folder, tmp_path, made, "sleep")
    host = runtime.start(spec, output)
    output.wait_for("ready")
    host.kill()
    assert host.wait(timeout=30) == 128 + signal.SIGKILL
    made.close()
    assert not spec.folder.root.exists()
    assert mounts_under(tmp_path) == []
    # No process of its group is left, once the kernel has torn the killed ones down.
    deadline = time.monotonic() + 10
    while group_exists(host.pid):
        assert time.monotonic() < deadline, f"processes of group {host.pid} are still there"
        time.sleep(0.05)


def test_an_instance_port_is_reachable_through_the_runtime(
    runtime: Runtime, readable: FolderCheck, image_folder: Path, tmp_path: Path, made: Made
) -> None:
    spec, output = start_host(runtime, readable, image_folder, tmp_path, made, "serve")
    host = runtime.start(spec, output)
    made.cleanups.append(lambda: (host.kill(), host.wait(timeout=10)))
    connector = spec.network.connector()
    made.cleanups.append(connector.close)
    deadline = time.monotonic() + 30
    while True:
        assert host.returncode is None, output.lines
        try:
            sock = connector.connect(8080, timeout=2)
            break
        except OSError:
            assert time.monotonic() < deadline, f"port 8080 never answered: {output.lines}"
            time.sleep(0.05)
    with sock:
        sock.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert _status_line(sock).endswith(b" 200 OK")
    # The router's way: a socket from the connector, connected where the connector says.
    unconnected = connector.socket()
    with unconnected:
        unconnected.settimeout(2)
        unconnected.connect(connector.address(8080))
        unconnected.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert _status_line(unconnected).endswith(b" 200 OK")


def _status_line(sock: socket.socket) -> bytes:
    """The HTTP status line (busybox's httpd answers HTTP/1.1 to a 1.0 request)."""
    received = b""
    while b"\r\n" not in received:
        chunk = sock.recv(256)
        if not chunk:
            break
        received += chunk
    status = received.split(b"\r\n", 1)[0]
    assert status.startswith(b"HTTP/1."), received
    return status


def test_release_frees_what_a_dead_server_left(runtime: Runtime, tmp_path: Path) -> None:
    """A server killed mid-job leaves host volumes behind: release lets the folder go."""
    job = tmp_path / "jobs" / "job-1"
    folder: HostVolume = runtime.prepare_host(job / "algo-1", VOLUME)
    (folder.opt_ml / "model").mkdir()
    runtime.release(job)
    assert mounts_under(job) == []


def test_networks_close(runtime: Runtime) -> None:
    network: HostNetwork = runtime.create_network(outside=False)
    connector = network.connector()
    network.close()
    try:
        with pytest.raises(OSError):  # refused: the network and whatever listened in it are gone
            connector.connect(8080, timeout=1)
    finally:
        connector.close()


def test_each_runtime_is_opened_by_name() -> None:
    # Opening asks no engine anything: the docker runtime needs its engine only to run hosts.
    assert open_runtime(Settings(runtime="docker", docker_host="unix:///nowhere.sock")).name == (
        "docker"
    )
    assert open_runtime(Settings(runtime="process")).name == "process"
