"""Hosts of the docker runtime: what a host's container is made with (binds, limits, labels, the
security options), and the running container: its output streamed line by line, signals, its exit
code and whether the kernel killed it for memory; removed once waited for and its output read."""

from __future__ import annotations

import contextlib
import logging
import posixpath
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors
import docker.types
from docker.utils.socket import STDOUT, frames_iter

from dockyard.runtimes.base import HostSpec, OutputSink, RunningHost
from dockyard.runtimes.docker_pulls import LIBPOD

logger = logging.getLogger(__name__)

OPT_ML = "/opt/ml"
GIB = 1024**3
# /dev/shm when the host has no memory limit. With one, /dev/shm may grow to the limit: its pages
# are charged to the container's memory anyway, and Docker's 64 MB default is what breaks
# PyTorch's DataLoader workers in SageMaker's local mode.
UNBOUNDED_SHM_BYTES = 2 * GIB
_MAX_LINE = 64 * 1024  # longer lines reach on_output in pieces
# How often podman looks at a container's state while dockyard waits for its exit.
_PODMAN_WAIT_INTERVAL = "20ms"
_REMOVE_AFTER_READERS = 30.0  # seconds to wait for the output reader once the container exited
EXIT_SIGKILL = 128 + 9


@dataclass(frozen=True)
class ContainerPlan:
    """The create arguments of one host's container (docker SDK's low-level API)."""

    image: str
    argv: list[str]
    hostname: str
    env: dict[str, str]
    labels: dict[str, str]
    host_config: dict[str, Any]
    networking_config: dict[str, Any]


def container_plan(
    api: docker.APIClient,
    spec: HostSpec,
    *,
    image_id: str,
    network: str,
    address: str | None,
    opt_ml: Path,
    tmp: Path,
    labels: dict[str, str],
) -> ContainerPlan:
    """How the host of `spec` runs: /opt/ml read-write and the channels and model read-only
    after it, /tmp on the host's volume, its limits (no swap), Docker's default capabilities with
    no-new-privileges, an init that forwards signals, and a fixed address on its network (or,
    with no `address`, the network namespace `network` names: `ns:<path>`, a cluster host's
    routed network, which the namespace's own interface addresses)."""
    binds = [f"{opt_ml}:{OPT_ML}:rw", f"{tmp}:/tmp:rw"]
    binds += [f"{source}:{destination}:ro" for source, destination in spec.read_only_binds]
    limits = spec.limits
    options: dict[str, Any] = {
        "binds": binds,
        "init": True,
        "network_mode": network,
        "extra_hosts": dict(spec.hosts),
        "security_opt": ["no-new-privileges"],
        "shm_size": limits.memory_bytes or UNBOUNDED_SHM_BYTES,
    }
    if limits.cpus is not None:
        options["nano_cpus"] = int(limits.cpus * 1e9)
    if limits.memory_bytes is not None:
        options["mem_limit"] = limits.memory_bytes
        options["memswap_limit"] = limits.memory_bytes  # the same: no swap
    if limits.pids is not None:
        options["pids_limit"] = limits.pids
    if spec.gpus > 0:
        options["device_requests"] = [
            docker.types.DeviceRequest(count=spec.gpus, capabilities=[["gpu"]])
        ]
    networking: dict[str, Any] = {}
    if address is not None:
        endpoint = api.create_endpoint_config(ipv4_address=address)
        networking = api.create_networking_config({network: endpoint})
    return ContainerPlan(
        image=image_id,
        argv=list(spec.argv),
        hostname=spec.hostname,
        env=dict(spec.env),
        labels=labels,
        host_config=api.create_host_config(**options),
        networking_config=networking,
    )


def remove_container(api: docker.APIClient, container_id: str) -> None:
    """Remove a container, running or not, with the volumes the engine made for its image's
    VOLUME lines (unlabelled, so nothing would find them later); gone already is fine."""
    with contextlib.suppress(docker.errors.NotFound):
        api.remove_container(container_id, force=True, v=True)


def find_program(
    api: docker.APIClient, container_id: str, argv0: str, path: str, workdir: str
) -> str | None:
    """Where the created (not yet started) container would find `argv0`, searching `path` as
    its OCI runtime will; None when nowhere. Asked before start: with an init in front, a missing
    program would otherwise show only as an exit code."""
    if "/" in argv0:
        candidates = [posixpath.join(workdir or "/", argv0)]
    else:
        candidates = [posixpath.join(folder or ".", argv0) for folder in path.split(":")]
    for candidate in candidates:
        # HEAD of the archive endpoint stats a path in the container's filesystem.
        answer = api.head(
            api._url("/containers/{0}/archive", container_id), params={"path": candidate}
        )
        if answer.status_code == 200:
            return candidate
    return None


def attach_output(streams: docker.APIClient, container_id: str) -> Any:
    """The container's stdout and stderr as one multiplexed socket, attached before it starts, so
    no line is missed and the stream ends when the program does (a followed log, on podman,
    ends ~250 ms after the exit)."""
    return streams.attach_socket(container_id, params={"stdout": 1, "stderr": 1, "stream": 1})


class DockerHost(RunningHost):
    """A started container: a thread waits for its exit, another reads its output (attached
    before the start) and splits it into stdout and stderr lines."""

    def __init__(
        self,
        client: docker.DockerClient,
        streams: docker.APIClient,
        container_id: str,
        output: Any,
        on_output: OutputSink,
        *,
        memory_limited: bool,
        podman: bool = False,
    ) -> None:
        self._client = client
        self._podman = podman
        self._streams = streams  # no read timeout: a quiet program is not a broken stream
        self.container_id = container_id
        self._memory_limited = memory_limited
        self._killed = False
        self._returncode: int | None = None
        self._oom_killed = False
        self._done = threading.Event()
        info = client.api.inspect_container(container_id)
        self.pid = int(info["State"].get("Pid") or 0)
        self._readers = [
            threading.Thread(
                target=self._read,
                args=(output, on_output),
                name=f"dockyard-container-{container_id[:12]}-output",
                daemon=True,
            )
        ]
        for reader in self._readers:
            reader.start()
        threading.Thread(
            target=self._wait, name=f"dockyard-container-{container_id[:12]}", daemon=True
        ).start()

    def _read(self, output: Any, on_output: OutputSink) -> None:
        lines = {"stdout": _LineSplitter(), "stderr": _LineSplitter()}

        def emit(name: str, texts: Iterator[str]) -> None:
            for text in texts:
                try:
                    on_output(name, text)
                except Exception:
                    logger.exception("output sink failed on a %s line", name)

        try:
            for stream_id, chunk in frames_iter(output, tty=False):
                # 1 and 2 are the program's; anything else is the engine's own (podman: 3).
                name = "stdout" if stream_id == STDOUT else "stderr"
                emit(name, lines[name].feed(chunk))
        except (OSError, ValueError) as exc:
            logger.warning("container %s: output ended: %s", self.container_id[:12], exc)
        finally:
            for name, splitter in lines.items():
                emit(name, splitter.flush())
            with contextlib.suppress(OSError):
                output.close()

    def _wait(self) -> None:
        code = EXIT_SIGKILL
        try:
            code = self._wait_for_exit()
            for reader in self._readers:
                reader.join(_REMOVE_AFTER_READERS)
            state = self._client.api.inspect_container(self.container_id)["State"]
            self._oom_killed = bool(state.get("OOMKilled"))
        except (docker.errors.APIError, OSError, ValueError, KeyError) as exc:
            logger.warning("container %s: could not wait for it: %s", self.container_id[:12], exc)
        finally:
            self._remove()
            self._returncode = code
            self._done.set()

    def _wait_for_exit(self) -> int:
        """The exit code. podman's Docker-compatible wait notices an exit ~250 ms late (it looks
        at the container's state that often); its own API takes how often to look."""
        if not self._podman:
            return int(self._streams.wait(self.container_id)["StatusCode"])
        api = self._streams
        answer = api.post(
            f"{api.base_url}{LIBPOD}/containers/{self.container_id}/wait",
            params={"condition": ["exited", "stopped"], "interval": _PODMAN_WAIT_INTERVAL},
        )
        answer.raise_for_status()
        return int(answer.json())

    def _remove(self) -> None:
        try:
            remove_container(self._client.api, self.container_id)
        except docker.errors.APIError as exc:
            logger.warning("container %s: not removed: %s", self.container_id[:12], exc)

    def wait(self, timeout: float | None = None) -> int | None:
        self._done.wait(timeout)
        return self.returncode

    @property
    def returncode(self) -> int | None:
        return self._returncode if self._done.is_set() else None

    @property
    def out_of_memory(self) -> bool:
        """The engine's OOMKilled; else (podman on cgroup v1 leaves it false) a SIGKILL that
        dockyard did not send to a host with a memory limit: the kernel's OOM killer's."""
        if self.returncode is None:
            return False
        if self._oom_killed:
            return True
        return self._memory_limited and self.returncode == EXIT_SIGKILL and not self._killed

    def signal(self, sig: int) -> None:
        # The container's init (init=True) passes it on to the program.
        if self._done.is_set():
            return
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self._client.api.kill(self.container_id, signal=int(sig))

    def kill(self) -> None:
        if self._done.is_set():
            return
        self._killed = True
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            self._client.api.kill(self.container_id, signal="SIGKILL")


class _LineSplitter:
    """Lines without their newline from byte chunks as they come; a partial last line on
    flush. A line longer than _MAX_LINE reaches the sink in pieces."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> Iterator[str]:
        self._pending += chunk
        while True:
            cut = self._pending.find(b"\n")
            if cut < 0:
                break
            line, self._pending = self._pending[:cut], self._pending[cut + 1 :]
            yield from _pieces(line)
        if len(self._pending) >= _MAX_LINE:
            yield from _pieces(self._pending)
            self._pending = b""

    def flush(self) -> Iterator[str]:
        if self._pending:
            yield from _pieces(self._pending)
            self._pending = b""


def _pieces(line: bytes) -> Iterator[str]:
    for start in range(0, max(len(line), 1), _MAX_LINE):
        yield line[start : start + _MAX_LINE].decode("utf-8", errors="replace")
