"""The runtime interface, all the engine knows of how a host runs: resolve an image reference,
make it ready, give a host its folder and network, start it, stream its output, signal and wait
for it, reach an instance's port, and clean up after a server that died.

Everything Dockerfile-, bubblewrap- or netns-specific lives behind it, in one runtime."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from socket import socket as Socket
from typing import Literal, Protocol

# (stream, line): stream is "stdout" or "stderr", the line has no trailing newline.
OutputSink = Callable[[str, str], None]
# A line for the job's or the build's log, written by dockyard rather than the program.
Log = Callable[[str], None]
# The engine's rule for reading a folder a caller names (DOCKYARD_LOCAL_PATHS): given what it is
# (for the error) and the path, the path to read, or a ValidationError saying why not.
FolderCheck = Callable[[str, Path], Path]
# What the image is made ready for: `train` runs a training host, `serve` a serving instance.
Purpose = Literal["train", "serve"]


@dataclass(frozen=True)
class Limits:
    """What one host may use; None leaves that resource unbounded."""

    cpus: float | None = None
    memory_bytes: int | None = None
    pids: int | None = None


class ResolvedImage(ABC):
    """An image reference a runtime has checked; cheap enough to make when a job is created."""

    ref: str

    @abstractmethod
    def check_command(
        self, entrypoint: list[str] | None, arguments: list[str] | None, default: str
    ) -> None:
        """ImageError when the image would have nothing to run for these (ContainerEntrypoint,
        ContainerArguments, and `train` / `serve`)."""


class PreparedImage(ABC):
    """An image made ready to run (environments built, prerequisites checked); shared by every
    host of a job, or every instance of a variant."""

    @abstractmethod
    def command(
        self, entrypoint: list[str] | None, arguments: list[str] | None, default: str
    ) -> list[str]:
        """The argv a host runs: the entrypoint (ContainerEntrypoint or the image's) with the
        arguments (ContainerArguments, the image's CMD, or `default`)."""


@dataclass(frozen=True)
class RunLineOutcome:
    """What one RUN line of an image (or one kind of command in it) becomes on this runtime."""

    number: int  # among the image's RUN lines, from 1
    line: str
    kind: str  # "pip", "apt", "r" or "other"
    outcome: str  # see image_setup: built, met, missing or not run
    detail: str = ""  # the missing packages and the command that installs them


@dataclass(frozen=True)
class ImageCheck:
    """What building an image ahead of its first job would do."""

    run_lines: list[RunLineOutcome]
    python_layer: Mapping[str, str]  # its Python layer: Status (NoLayer, NotBuilt, Built), ...
    build_steps: int  # the pip commands a build runs
    missing: list[RunLineOutcome]  # lines whose prerequisites this machine does not meet


class ImageRegistry(Protocol):
    """Where references of a registry the server answers for (ECR URIs) are pulled from."""

    def locate(self, ref: str) -> str:
        """The reference the engine pulls for `ref` (unchanged when it is no such URI)."""

    def auth_for(self, ref: str) -> dict[str, str] | None:
        """Credentials (docker SDK auth_config) for pulling `ref`, when it needs any."""


class HostVolume(Protocol):
    """A host's own folder: its /opt/ml (filled by the engine before start), scratch and home,
    bounded by the job's VolumeSizeInGB."""

    @property
    def root(self) -> Path: ...

    @property
    def opt_ml(self) -> Path: ...

    def is_full(self) -> bool: ...

    def describe_size(self) -> str: ...

    def close(self) -> None:
        """Release the volume; what the host wrote stays readable (artifacts, logs)."""

    def remove(self) -> None:
        """Release the volume and delete the folder."""


class PortConnector(Protocol):
    """Reaches ports inside one network: of a serving instance, from the router."""

    def address(self, port: int) -> tuple[str, int]:
        """Where a socket from `socket()` connects to reach the network's `port`."""

    def socket(self) -> Socket:
        """An unconnected, non-blocking TCP socket that can reach the network's ports."""

    def connect(self, port: int, host: str = "127.0.0.1", timeout: float = 2.0) -> Socket:
        """A connected, blocking socket to `port`."""

    def close(self) -> None: ...


class HostNetwork(Protocol):
    """The private network of one job's hosts, or of one serving instance."""

    def connector(self) -> PortConnector: ...

    def host_addresses(self, hostnames: Sequence[str]) -> dict[str, str]:
        """Where each of these hosts (`algo-1`, ...) will be reached inside the network: the
        IPv4 addresses their /etc/hosts names them by."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class HostSpec:
    """Everything a runtime needs to run one host (`algo-1`, ...) of a job or one instance."""

    image: PreparedImage
    argv: list[str]
    hostname: str
    folder: HostVolume  # from this runtime's prepare_host
    network: HostNetwork  # from this runtime's create_network: the job's, or the instance's
    # (host path, container path), applied after /opt/ml, so /opt/ml/input/data/train may be one.
    read_only_binds: list[tuple[Path, str]] = field(default_factory=list)
    env: Mapping[str, str] = field(default_factory=dict)  # platform env, over the image's ENV
    hosts: Mapping[str, str] = field(default_factory=dict)  # hostname -> IPv4 for /etc/hosts
    hidden_paths: list[Path] = field(default_factory=list)  # host paths the program must not see
    limits: Limits = field(default_factory=Limits)
    gpus: int = 0  # GPUs granted to the host (SM_NUM_GPUS); runtimes without GPU access show none


class RunningHost(ABC):
    """A started host. Exit codes follow Docker: 128+N when the program died of signal N."""

    pid: int

    @abstractmethod
    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code once the program and its output readers are done; None on timeout."""

    @abstractmethod
    def signal(self, sig: int) -> None:
        """Deliver `sig` to the user's processes (SIGTERM for a graceful stop)."""

    @abstractmethod
    def kill(self) -> None:
        """SIGKILL everything of this host."""

    @property
    @abstractmethod
    def returncode(self) -> int | None:
        """The exit code, or None while the host runs."""

    @property
    def out_of_memory(self) -> bool:
        """True when the kernel killed a process of the host for exceeding its memory limit."""
        return False

    @property
    def lost(self) -> str | None:
        """Why the host was lost rather than ended (its node went away), saying where."""
        return None


class Runtime(ABC):
    """Runs hosts of jobs; adapters are chosen by name (`process`, `docker`, ...)."""

    name: str

    @abstractmethod
    def resolve(self, ref: str, readable: FolderCheck) -> ResolvedImage:
        """The image `ref` names (ValidationError / ImageError saying what to fix when it names
        none); a folder it reads must pass `readable`. Cheap: called when a job is created."""

    @abstractmethod
    def prepare_image(
        self, image: ResolvedImage, *, code: Path | None, purpose: Purpose, log: Log
    ) -> PreparedImage:
        """Make `image` ready to run its `purpose` with the user's code in `code` (requirements
        installed): the slow part, run when a job starts. Raises DockyardErrors worth a
        FailureReason."""

    @abstractmethod
    def check_image(self, image: ResolvedImage) -> ImageCheck:
        """What building `image` ahead of its first job would do (ImageError if not buildable)."""

    @abstractmethod
    def build_image(self, image: ResolvedImage, log: Log) -> None:
        """Build `image` ahead of its first job, so that job starts at once."""

    @abstractmethod
    def prepare_host(self, root: Path, volume_bytes: int) -> HostVolume:
        """The folder of a host about to run, with its own volume of `volume_bytes`, at `root`;
        the engine fills its /opt/ml before `start`. Remove it once the host is done."""

    @abstractmethod
    def create_network(self, *, outside: bool) -> HostNetwork:
        """A network for the hosts of one job (or one serving instance); `outside` gives it the
        machine's outside access (EnableNetworkIsolation false). Close it once they are done."""

    @abstractmethod
    def start(self, spec: HostSpec, on_output: OutputSink) -> RunningHost:
        """Start the host's program; raises SandboxError when it cannot be started."""

    @abstractmethod
    def release(self, folder: Path) -> None:
        """Release what hosts under `folder` still hold (a server killed mid-job), so it can be
        deleted."""

    @abstractmethod
    def recover(self, home: Path) -> None:
        """At server start: release what a server killed with -9 left behind under `home`."""
