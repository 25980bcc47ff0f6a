"""What the process runtime needs to run one host in a sandbox: the engine's HostSpec with the
prepared image taken apart (its ImageSpec, the folders it shows, its Python environment) and the
host's own folder and network namespace."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.runtimes.base import Limits
from dockyard.runtimes.images import ImageSpec
from dockyard.runtimes.netns import Network
from dockyard.runtimes.venv_builds import PythonEnvironment
from dockyard.runtimes.volumes import HostFolder


@dataclass(frozen=True)
class SandboxSpec:
    """Everything a sandbox of one host (`algo-1`, ...) is made from."""

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
