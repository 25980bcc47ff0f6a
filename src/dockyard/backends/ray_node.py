"""One host on a node of a Ray cluster: the actor that makes the host's volume and network there,
gets its image ready, runs it with the node's runtime, buffers its output for the server to read,
and copies what it wrote back to where the server reads it.

The server talks to it only through its methods (made remote by ray_backend), so it holds
nothing of the server's: settings and plain data come in, plain data goes out."""

from __future__ import annotations

import collections
import os
import shutil
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from dockyard.backends.base import HostRun, ImageUse
from dockyard.contract.errors import DockyardError, SandboxError
from dockyard.runtimes.base import (
    HostNetwork,
    HostSpec,
    HostVolume,
    PreparedImage,
    RunningHost,
    Runtime,
)
from dockyard.runtimes.routed_network import RoutedNetwork
from dockyard.settings import Settings

# Lines a host may have written that the server has not read yet; past this the oldest go (the
# server reads continuously, so only a server that stopped reading loses any).
_BUFFERED_LINES = 200_000


@dataclass(frozen=True)
class HostNetworkPlan:
    """The host's place in its job's routed network (runtimes.routed_network)."""

    address: str
    subnet: str
    hosts: dict[str, str]  # hostname -> address, every host of the job
    peer_nodes: dict[str, str]  # address of a peer host -> address of its node
    hosts_cidr: str
    outside: bool


@dataclass(frozen=True)
class OutputBatch:
    lines: list[tuple[str, str]]  # (stream, line)
    next: int  # the sequence number to ask from next time
    exit_code: int | None  # set once the host has exited and every line is in `lines`
    out_of_memory: bool = False
    dropped: int = 0  # lines lost because the server did not read them in time


class NodeHost:
    """The actor class (ray_backend makes it remote). Its methods run on a few threads at once:
    `output` waits for lines while `signal` and `kill` must still get through."""

    def __init__(self, settings: Settings, host: str, owner: str) -> None:
        self.settings = settings
        self.host = host
        self.owner = owner
        self._runtime: Runtime | None = None
        self._volume: HostVolume | None = None
        self._network: HostNetwork | None = None
        self._image: PreparedImage | None = None
        self._running: RunningHost | None = None
        self._lines: collections.deque[tuple[int, str, str]] = collections.deque()
        self._next_seq = 0
        self._dropped = 0
        self._exit: int | None = None
        # Lines before this sequence number reached a server: a restarted one goes on from here.
        self._delivered = 0
        self._plan: HostNetworkPlan | None = None
        self._changed = threading.Condition()
        self._closed = False

    # -- where it is -----------------------------------------------------------------------------

    def node(self, home_mark: str, token: str) -> tuple[str, str]:
        """(Ray node id, the node's address), once this node is seen to read the server's home
        (the file `home_mark` holds `token`): SandboxError saying what to set up otherwise."""
        import ray

        node_id, address = ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address()
        try:
            seen = Path(home_mark).read_text()
        except OSError:
            seen = None
        if seen != token:
            home = self.settings.home
            raise SandboxError(
                f"the Ray node {address} does not see the dockyard server's DOCKYARD_HOME at "
                f"{home} ({'another folder is there' if seen else 'nothing is there'}): every "
                "node stages and collects its hosts' files there. Mount the same folder at "
                f"{home} on every node (a shared file system such as NFS), or start the "
                "server with a DOCKYARD_HOME the nodes share"
            )
        return node_id, address

    def runtime(self, name: str) -> Runtime:
        """The node's runtime `name`: its sandboxes, or its container engine (podman's service
        at DOCKYARD_DOCKER_HOST, whose containers can join a host's routed network). ECR URIs
        are not pulled on a node: the server's registry is the server's."""
        if self._runtime is None:
            from dockyard.runtimes.factory import open_runtime

            self._runtime = open_runtime(self.settings, name)
        return self._runtime

    # -- getting ready -----------------------------------------------------------------------------

    def prepare(self, runtime: str, root: str, volume_bytes: int) -> None:
        self._volume = self.runtime(runtime).prepare_host(Path(root), volume_bytes)

    def load(self, staged: str) -> None:
        """Copy what the server staged for this host's /opt/ml onto its volume. The staging
        folder is the server's own writing (config files, code), never the job's."""
        assert self._volume is not None
        shutil.copytree(staged, self._volume.opt_ml, symlinks=True, dirs_exist_ok=True)

    def volume_full(self) -> bool:
        return self._volume is not None and self._volume.is_full()

    def prepare_image(self, image: ImageUse, readable: object) -> tuple[list[str], list[str]]:
        """(the argv, the lines the build logged)."""
        assert self._volume is not None
        runtime = self.runtime(image.runtime)
        logged: list[str] = []
        resolved = runtime.resolve(image.ref, readable)  # type: ignore[arg-type]
        code = image.code or self._volume.opt_ml / "code"
        self._image = runtime.prepare_image(
            resolved, code=code, purpose=image.purpose, log=logged.append
        )
        argv = self._image.command(image.entrypoint, image.arguments, image.purpose)
        return argv, logged

    # -- running -------------------------------------------------------------------------------

    def start(self, run: HostRun, network: HostNetworkPlan, node_env: dict[str, str]) -> int:
        assert self._volume is not None and self._image is not None and self._runtime is not None
        self._plan = network
        self._network = RoutedNetwork.create(
            address=network.address,
            subnet=network.subnet,
            hosts=network.hosts,
            outside=network.outside,
            hosts_cidr=network.hosts_cidr,
            peer_nodes=network.peer_nodes,
        )
        spec = HostSpec(
            image=self._image,
            argv=run.argv,
            hostname=self.host,
            folder=self._volume,
            network=self._network,
            read_only_binds=run.read_only_binds,
            env={**run.env, **node_env},
            hosts=network.hosts,
            hidden_paths=run.hidden_paths,
            limits=run.limits,
            gpus=run.gpus,
        )
        self._running = self._runtime.start(spec, self._on_output)
        threading.Thread(target=self._wait, name=f"wait-{self.host}", daemon=True).start()
        return self._running.pid

    def _on_output(self, stream: str, line: str) -> None:
        with self._changed:
            if len(self._lines) >= _BUFFERED_LINES:
                self._lines.popleft()
                self._dropped += 1
            self._lines.append((self._next_seq, stream, line))
            self._next_seq += 1
            self._changed.notify_all()

    def _wait(self) -> None:
        assert self._running is not None
        code = self._running.wait()
        with self._changed:
            self._exit = code
            self._changed.notify_all()

    def output(self, since: int, timeout: float) -> OutputBatch:
        """The lines from sequence number `since` on, waiting up to `timeout` for one; with the
        exit code once the host has exited and nothing is left to read."""
        deadline = time.monotonic() + timeout
        with self._changed:
            self._delivered = max(self._delivered, since)
            while True:
                while self._lines and self._lines[0][0] < since:
                    self._lines.popleft()  # read by the server already
                if self._lines or self._exit is not None or self._closed:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.wait(remaining)
            # Every line is buffered before the exit is known: the runtime's wait returns once the
            # host's output readers are done.
            lines = [(stream, line) for _, stream, line in self._lines]
            dropped, self._dropped = self._dropped, 0
            oom = self._running is not None and self._running.out_of_memory
            return OutputBatch(lines, self._next_seq, self._exit, oom, dropped)

    def attach(self) -> tuple[int, int, HostNetworkPlan | None]:
        """For a server that restarted: (the host's pid, the first line no server has had,
        the host's network plan); pid 0 when the host never started."""
        with self._changed:
            pid = self._running.pid if self._running is not None else 0
            return pid, self._delivered, self._plan

    def signal(self, sig: int) -> None:
        if self._running is not None:
            self._running.signal(sig)

    def kill(self) -> None:
        if self._running is not None:
            self._running.kill()

    # -- after -------------------------------------------------------------------------------------

    def collect(self, into: str) -> None:
        """Copy /opt/ml/model and /opt/ml/output to `into` (a folder of the job's that the server
        reads). Links are copied as links, never followed, and tarfile's data filter refuses any
        that would point out of `into`, absolute names and device files: nothing the host wrote
        makes this write or read elsewhere. The host's processes are all gone by now."""
        assert self._volume is not None
        dest = Path(into)
        dest.mkdir(parents=True, exist_ok=True)
        opt_ml = self._volume.opt_ml
        with tempfile.TemporaryFile(dir=dest) as buffer:
            with tarfile.open(fileobj=buffer, mode="w") as tar:
                for part in ("model", "output"):
                    if (opt_ml / part).is_dir() and not (opt_ml / part).is_symlink():
                        tar.add(opt_ml / part, arcname=part, filter=_plain_members)
            buffer.seek(0)
            with tarfile.open(fileobj=buffer, mode="r") as tar:
                tar.extractall(dest, filter="data")

    def close(self) -> None:
        """Kill what still runs, close the network and unmount the volume. Idempotent; errors
        are raised after everything was tried."""
        errors: list[Exception] = []
        if self._running is not None and self._running.returncode is None:
            self._running.kill()
            self._running.wait(timeout=10)
        network, self._network = self._network, None
        if network is not None:
            try:
                network.close()
            except Exception as exc:
                errors.append(exc)
        volume, self._volume = self._volume, None
        if volume is not None:
            try:
                volume.close()
            except DockyardError as exc:
                errors.append(exc)
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        if errors:
            raise errors[0]

    def pid(self) -> int:
        return os.getpid()


def _plain_members(member: tarfile.TarInfo) -> tarfile.TarInfo | None:
    """Regular files, folders and links only (FIFOs, sockets and devices are left out, as the
    engine's artifact tarballs leave them), owned by root, without setuid/setgid/sticky bits."""
    if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
        return None
    member.uid = member.gid = 0
    member.uname = member.gname = "root"
    member.mode &= 0o777
    return member
