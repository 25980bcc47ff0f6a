"""The local backend: every host on this machine, through a runtime, gated by the machine's
capacity. The engine writes straight onto the hosts' volumes and reads what they wrote where it
lies: nothing is copied."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from pathlib import Path

from dockyard.backends.base import (
    Backend,
    HostRun,
    ImageUse,
    Node,
    OnWait,
    Placement,
    PlacementRequest,
)
from dockyard.backends.capacity import Capacity
from dockyard.contract.errors import DockyardError
from dockyard.contract.opt_ml import OptMl
from dockyard.runtimes.base import (
    FolderCheck,
    HostNetwork,
    HostSpec,
    HostVolume,
    Log,
    OutputSink,
    PortConnector,
    PreparedImage,
    RunningHost,
    Runtime,
)
from dockyard.runtimes.factory import Runtimes

LOCAL_NODE = Node("local", "127.0.0.1")


class LocalBackend(Backend):
    name = "local"

    def __init__(self, runtimes: Runtimes, capacity: Capacity) -> None:
        self.runtimes = runtimes
        self.capacity = capacity

    def place(
        self,
        request: PlacementRequest,
        *,
        on_wait: OnWait,
        cancelled: Callable[[], bool],
    ) -> Placement | None:
        runtime = self.runtimes.named(request.runtime)
        if not request.queue:
            return LocalPlacement(request, runtime, lambda: None)
        demand = self.capacity.demand(request.instance, len(request.hosts), request.held_gpus)
        if not self.capacity.acquire(demand, on_wait=on_wait, cancelled=cancelled):
            return None
        return LocalPlacement(request, runtime, lambda: self.capacity.release(demand))

    def recover(self, keep: Collection[str] = ()) -> None:
        """Nothing of the backend's own: the runtimes recover their hosts (Runtimes.recover)."""

    def close(self) -> None:
        pass


class LocalPlacement(Placement):
    def __init__(
        self, request: PlacementRequest, runtime: Runtime, give_back: Callable[[], None]
    ) -> None:
        self.request = request
        self.hosts = list(request.hosts)
        self.runtime = runtime
        self._give_back: Callable[[], None] | None = give_back
        self._volumes: dict[str, HostVolume] = {}
        self._network: HostNetwork | None = None
        self._image: PreparedImage | None = None
        self._lock = threading.Lock()

    def node_of(self, host: str) -> Node:
        return LOCAL_NODE

    def _job_network(self) -> HostNetwork:
        # One network for all the job's hosts, made when first needed: a job that fails before
        # its hosts start never makes one.
        with self._lock:
            if self._network is None:
                self._network = self.runtime.create_network(outside=self.request.outside)
            return self._network

    def host_addresses(self) -> dict[str, str]:
        return self._job_network().host_addresses(self.hosts)

    def prepare(self, host: str, root: Path, volume_bytes: int) -> HostVolume:
        volume = self.runtime.prepare_host(root, volume_bytes)
        self._volumes[host] = volume
        return volume

    def load(self, host: str) -> None:
        """The engine wrote onto the volume itself."""

    def prepare_image(self, image: ImageUse, readable: FolderCheck, log: Log) -> list[str]:
        # One build for all the hosts: they share the machine. The code's requirements come
        # from the first host's /opt/ml/code (every host has the same code).
        resolved = self.runtime.resolve(image.ref, readable)
        code = image.code
        if code is None and self._volumes:
            code = self._volumes[self.hosts[0]].opt_ml / "code"
        self._image = self.runtime.prepare_image(
            resolved, code=code, purpose=image.purpose, log=log
        )
        return self._image.command(image.entrypoint, image.arguments, image.purpose)

    def reuse_image(self, image: PreparedImage) -> bool:
        self._image = image
        return True

    def start(self, host: str, run: HostRun, on_output: OutputSink) -> RunningHost:
        assert self._image is not None, "prepare_image comes before start"
        network = self._job_network()
        spec = HostSpec(
            image=self._image,
            argv=run.argv,
            hostname=host,
            folder=self._volumes[host],
            network=network,
            read_only_binds=run.read_only_binds,
            env=run.env,
            hosts=network.host_addresses(self.hosts),
            hidden_paths=run.hidden_paths,
            limits=run.limits,
            gpus=run.gpus,
        )
        return self.runtime.start(spec, on_output)

    def connector(self, host: str) -> PortConnector:
        return self._job_network().connector()

    def collect(self, host: str, into: Path) -> OptMl:
        """The host's own /opt/ml, still mounted until `release`."""
        return OptMl(self._volumes[host].opt_ml)

    def release(self, remove: bool = False) -> None:
        with self._lock:
            network, self._network = self._network, None
            give_back, self._give_back = self._give_back, None
        errors: list[DockyardError] = []
        if network is not None:
            network.close()
        volumes, self._volumes = self._volumes, {}
        for volume in volumes.values():
            try:
                volume.remove() if remove else volume.close()
            except DockyardError as exc:
                errors.append(exc)
        if give_back is not None:
            give_back()
        if errors:
            raise errors[0]
