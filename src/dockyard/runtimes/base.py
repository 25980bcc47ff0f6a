"""The Runtime interface: prepare a host's folder and network, start one host of a job from an
ImageSpec, and control it while it runs."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.runtimes.cgroups import Limits
from dockyard.runtimes.images import ImageSpec
from dockyard.runtimes.netns import Network
from dockyard.runtimes.venv_builds import PythonEnvironment
from dockyard.runtimes.volumes import HostFolder

# (stream, line): stream is "stdout" or "stderr", the line has no trailing newline.
OutputSink = Callable[[str, str], None]


@dataclass(frozen=True)
class HostSpec:
    """Everything a runtime needs to run one host (`algo-1`, ...) of a job."""

    image: ImageSpec
    argv: list[str]
    hostname: str
    folder: HostFolder  # its volume: /opt/ml, /tmp and home, owned by its sandbox user
    network: Network  # its job's network (shared by the job's hosts), or its own
    # (host path, sandbox path), applied after /opt/ml, so /opt/ml/input/data/train may be one.
    read_only_binds: list[tuple[Path, str]] = field(default_factory=list)
    env: Mapping[str, str] = field(default_factory=dict)  # platform env, over the image's ENV
    hosts: Mapping[str, str] = field(default_factory=dict)  # hostname -> IPv4 for /etc/hosts
    hidden_paths: list[Path] = field(default_factory=list)  # host paths the program must not see
    limits: Limits = field(default_factory=Limits)
    # The image's Python environment (read-only, in read_only_binds): the runtime lays a writable
    # one over it, so a program may pip install while it runs, as it could in a container.
    python: PythonEnvironment | None = None

    @property
    def opt_ml(self) -> Path:
        return self.folder.opt_ml


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


class Runtime(ABC):
    """Runs hosts of jobs; adapters are chosen by name (`process`, `docker`, ...)."""

    name: str

    @abstractmethod
    def prepare_host(self, root: Path, volume_bytes: int) -> HostFolder:
        """The folder of a host about to run, with its own volume of `volume_bytes`, mounted at
        `root`; the engine fills its /opt/ml before `start`. Close it once the host is done."""

    @abstractmethod
    def create_network(self, *, outside: bool) -> Network:
        """A network for the hosts of one job (or one serving instance); `outside` gives it the
        host's outside access (EnableNetworkIsolation false). Close it once they are done."""

    @abstractmethod
    def start(self, spec: HostSpec, on_output: OutputSink) -> RunningHost:
        """Start the host's program; raises SandboxError when it cannot be started."""
