"""The backend interface, all the engine knows of where hosts run: place the hosts of one job
(all or none of them), make each one's folder on its node, get its image ready there, start it,
collect what it wrote, and give everything back.

`local` runs every host on this machine through a runtime; `ray` runs each host in an actor on a
node of a Ray cluster, which runs the same runtime there. The engine writes each host's /opt/ml
(config files, code) into a staging folder the backend copies onto the host's own volume, and
reads what the host wrote from what `collect` gives back, so it never needs to see a node's
disks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dockyard.contract.instance_types import InstanceType
from dockyard.contract.opt_ml import OptMl
from dockyard.runtimes.base import (
    FolderCheck,
    HostVolume,
    Limits,
    Log,
    OutputSink,
    PortConnector,
    PreparedImage,
    Purpose,
    RunningHost,
)


@dataclass(frozen=True)
class Node:
    """Where a host runs: a node's id (Ray's, or `local`) and its address."""

    id: str
    address: str

    def describe(self) -> str:
        return self.address if self.id == "local" else f"node {self.id[:12]} ({self.address})"


@dataclass(frozen=True)
class PlacementRequest:
    """The hosts of one job (`algo-1`...), or the one host of a serving instance."""

    owner: str  # the job's or instance's name, unique among what runs
    hosts: Sequence[str]
    instance: InstanceType
    runtime: str  # what runs each host on its node: process or docker
    gpus_per_host: int = 0
    # GPUs the whole request holds on a local machine (more than hosts x gpus_per_host when a
    # job waits for GPUs the machine does not have: engine.sizing.gpu_grant)
    held_gpus: int = 0
    outside: bool = True  # the hosts reach the outside world (EnableNetworkIsolation false)
    # Whether the request waits for the resources its hosts ask for. A serving instance on this
    # machine does not (endpoints and transform jobs start at once, as they always have); on a
    # cluster every host holds what its type asks for, so an instance waits for a node too.
    queue: bool = True


@dataclass(frozen=True)
class ImageUse:
    """The image a host runs and what for: resolved and made ready on the host's node."""

    ref: str
    runtime: str  # process or docker
    purpose: Purpose
    entrypoint: list[str] | None = None
    arguments: list[str] | None = None
    # The code whose requirements are installed: a folder every node reads (a serving model's
    # code/), or None for each host's own /opt/ml/code.
    code: Path | None = None


@dataclass(frozen=True)
class HostRun:
    """What one host starts with once its folder and image are ready."""

    argv: list[str]
    env: Mapping[str, str] = field(default_factory=dict)
    # (path the backend's nodes can read, path inside the host) bound read-only: channels
    read_only_binds: list[tuple[Path, str]] = field(default_factory=list)
    hidden_paths: list[Path] = field(default_factory=list)
    limits: Limits = field(default_factory=Limits)
    gpus: int = 0


# A message saying why the hosts cannot start yet, given while they wait.
OnWait = Callable[[str], None]


class Placement(ABC):
    """The hosts of one request, placed: each on its node with its resources held until
    `release`."""

    hosts: Sequence[str]

    @abstractmethod
    def node_of(self, host: str) -> Node: ...

    @abstractmethod
    def host_addresses(self) -> dict[str, str]:
        """Where each host is reached by its peers (the addresses /etc/hosts gives algo-N)."""

    @abstractmethod
    def prepare(self, host: str, root: Path, volume_bytes: int) -> HostVolume:
        """Make the host's folder at `root` with its own volume on its node; the engine writes
        the host's /opt/ml (config files, code) into the returned volume's `opt_ml`, then calls
        `load`."""

    @abstractmethod
    def load(self, host: str) -> None:
        """What the engine wrote is complete: have it on the host's volume on its node."""

    @abstractmethod
    def prepare_image(self, image: ImageUse, readable: FolderCheck, log: Log) -> list[str]:
        """Make the image ready on every node with a host (the code's requirements installed
        from the hosts' /opt/ml/code); the argv the hosts run. A folder the image names is read
        only when `readable` allows it."""

    def reuse_image(self, image: PreparedImage) -> bool:
        """Run the hosts with an image the server already made ready (a variant's, shared by its
        instances) instead of `prepare_image`: True when the hosts run where the server does."""
        return False

    def attach(
        self, host: str, root: Path, volume_bytes: int, on_output: OutputSink
    ) -> tuple[HostVolume, RunningHost]:
        """For a server that restarted while the host ran (a placement from `Backend.reattach`):
        its volume (of `volume_bytes`, as `prepare` made it) and its running program, whose
        output reaches `on_output` from the first line no server had read."""
        raise NotImplementedError(f"{type(self).__name__} cannot re-attach to a running host")

    @abstractmethod
    def start(self, host: str, run: HostRun, on_output: OutputSink) -> RunningHost:
        """Start the host's program; its output reaches `on_output` as it comes."""

    @abstractmethod
    def connector(self, host: str) -> PortConnector:
        """How the server reaches the host's ports (the router, an instance's /ping)."""

    @abstractmethod
    def collect(self, host: str, into: Path) -> OptMl:
        """What the host wrote (/opt/ml/model, /opt/ml/output), readable by the engine under
        `into` (a folder of the job's own) or where it already lies."""

    @abstractmethod
    def release(self, remove: bool = False) -> None:
        """Stop what still runs, unmount and close the hosts' volumes and networks and give their
        resources back; with `remove`, delete the hosts' folders too (a serving instance's, which
        nobody reads afterwards). Idempotent."""


class Backend(ABC):
    """Where hosts run: adapters are chosen by name (`local`, `ray`)."""

    name: str

    @abstractmethod
    def place(
        self,
        request: PlacementRequest,
        *,
        on_wait: OnWait,
        cancelled: Callable[[], bool],
    ) -> Placement | None:
        """Hold resources for every host of `request` at once, waiting (calling `on_wait` with
        why) while they are not free; None when `cancelled()` turns true first. Raises
        ResourceLimitExceeded when they can never be had, saying what is missing."""

    def reattach(self, request: PlacementRequest) -> Placement | None:
        """At server start: the placement of `request` if its hosts still run where a server
        killed with -9 placed them (then `attach` each), else None. This machine's hosts die
        with their server, so the local backend never has one."""
        return None

    @abstractmethod
    def recover(self, keep: Collection[str] = ()) -> None:
        """At server start: give back what a server killed with -9 left running, but the
        placements of the owners in `keep` (re-attached)."""

    @abstractmethod
    def close(self) -> None:
        """The server is going away."""
