"""The ray backend: the hosts of a job gang-scheduled on a Ray cluster with one placement group
(all or none), each host an actor (ray_node.NodeHost) on its node, spread across nodes when they
can be. The server is a Ray driver: it places, starts and reads the hosts; the nodes do the rest.

The cluster's nodes reach the server's job folders at the same path (one machine, or a shared
file system: DOCKYARD_HOME on NFS): the server stages each host's /opt/ml and channels there,
and each host's actor copies what it wrote back there."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from dockyard.backends.base import (
    Backend,
    HostRun,
    ImageUse,
    Node,
    OnWait,
    Placement,
    PlacementRequest,
)
from dockyard.backends.ray_node import HostNetworkPlan, NodeHost, OutputBatch
from dockyard.backends.subnets import SubnetPool, host_addresses
from dockyard.contract.errors import DockyardError, ResourceLimitExceeded, SandboxError
from dockyard.contract.opt_ml import OptMl
from dockyard.runtimes.address_connector import AddressConnector
from dockyard.runtimes.base import (
    FolderCheck,
    HostVolume,
    Log,
    OutputSink,
    PortConnector,
    RunningHost,
)
from dockyard.runtimes.volumes import describe_volume_size
from dockyard.settings import Settings

logger = logging.getLogger(__name__)

GIB = 1024**3
# The actor's methods that may run at once: `output` waits for lines while signals get through.
_ACTOR_THREADS = 8
# How long an actor call that should be quick may take before its node counts as lost.
_CALL_SECONDS = 60.0
_PLACEMENT_PREFIX = "dockyard:"
# How long a placement may take to be made before the job is told it is waiting.
_QUIET_WAIT_SECONDS = 2.0


def ray_namespace(settings: Settings) -> str:
    """The Ray namespace of one server's actors: named by its home, so two servers sharing a
    cluster never touch each other's hosts."""
    if settings.ray_namespace:
        return settings.ray_namespace
    digest = hashlib.sha256(str(settings.home.resolve()).encode()).hexdigest()[:12]
    return f"dockyard-{digest}"


class RayBackend(Backend):
    name = "ray"

    def __init__(self, settings: Settings) -> None:
        import ray

        self._ray = ray
        self.settings = settings
        self.namespace = ray_namespace(settings)
        if not ray.is_initialized():
            ray.init(
                address=settings.ray_address or "auto",
                namespace=self.namespace,
                log_to_driver=False,
                logging_level=logging.WARNING,
                configure_logging=False,
            )
        self.subnets = SubnetPool(settings.hosts_cidr)
        self._actor = ray.remote(NodeHost)
        # What every node must read at the server's path: the nodes stage and collect hosts'
        # files under the home, so one that sees another folder there would run jobs on nothing.
        self.home_mark = settings.home / "cluster" / "home-mark"
        self.home_mark.parent.mkdir(parents=True, exist_ok=True)
        self.home_token = uuid.uuid4().hex
        self.home_mark.write_text(self.home_token)

    # -- placing -----------------------------------------------------------------------------------

    def bundle(self, request: PlacementRequest) -> dict[str, float]:
        """What one host holds on its node: the instance type's vCPUs, memory and GPUs, and one
        unit of the custom resource named after the type when the cluster defines one (nodes
        started with `--resources '{"ml.m5.large": 4}'` take only that many such hosts)."""
        instance = request.instance
        if instance.is_whole_machine:
            bundle: dict[str, float] = {"CPU": 1.0}
        else:
            bundle = {"CPU": float(instance.vcpus), "memory": float(instance.memory_gib * GIB)}
        if request.gpus_per_host:
            bundle["GPU"] = float(request.gpus_per_host)
        if instance.name in self._ray.cluster_resources():
            bundle[instance.name] = 1.0
        return bundle

    def _nodes(self) -> list[dict[str, Any]]:
        return [node for node in self._ray.nodes() if node.get("Alive")]

    def _check_fits(self, bundle: Mapping[str, float], request: PlacementRequest) -> None:
        """ResourceLimitExceeded when no node of the cluster could ever hold one host."""
        nodes = self._nodes()
        if any(_holds(node["Resources"], bundle) for node in nodes):
            return
        largest = ", ".join(_describe(node["Resources"]) for node in nodes) or "no node"
        raise ResourceLimitExceeded(
            f"no node of the Ray cluster can ever hold one {request.instance.name} host: it "
            f"needs {_describe(bundle)}; the nodes have {largest}. Add a node that large "
            "(ray start --address ... --num-cpus N --memory BYTES), or ask for a smaller "
            "instance type"
        )

    def _waiting_message(self, bundle: Mapping[str, float], request: PlacementRequest) -> str:
        free = self._ray.available_resources()
        return (
            f"Waiting for capacity on the Ray cluster: {len(request.hosts)} hosts of "
            f"{_describe(bundle)} each must start together; {len(self._nodes())} nodes, "
            f"{_describe(free)} free in all"
        )

    def place(
        self,
        request: PlacementRequest,
        *,
        on_wait: OnWait,
        cancelled: Callable[[], bool],
    ) -> Placement | None:
        from ray.util.placement_group import placement_group

        bundle = self.bundle(request)
        self._check_fits(bundle, request)
        group = placement_group(
            [dict(bundle) for _ in request.hosts],
            strategy="SPREAD",
            name=self.group_prefix + request.owner,
            lifetime="detached",
        )
        # A group that fits takes Ray a moment to make: only one not ready after that is waiting.
        told_after = time.monotonic() + _QUIET_WAIT_SECONDS
        told = False
        while not group.wait(timeout_seconds=0.2):
            if cancelled():
                _remove_group(self._ray, group)
                return None
            if not told and time.monotonic() >= told_after:
                on_wait(self._waiting_message(bundle, request))
                told = True
        subnet = self.subnets.take(request.owner)
        placement = RayPlacement(self, request, group, bundle, subnet)
        try:
            placement.start_actors()
        except BaseException:
            placement.release()
            raise
        return placement

    def actor_class(self) -> Any:
        return self._actor

    # -- after a restart ---------------------------------------------------------------------------

    def reattach(self, request: PlacementRequest) -> Placement | None:
        """The placement of a job whose hosts' actors all still run (the server was killed,
        the cluster was not): the same actors, placement group and subnet."""
        ray = self._ray
        from ray.util.placement_group import PlacementGroup

        groups = [
            group_id
            for group_id, info in ray.util.placement_group_table().items()
            if info.get("name") == self.group_prefix + request.owner
            and info.get("state") == "CREATED"
        ]
        if len(groups) != 1:
            return None
        actors: dict[str, Any] = {}
        for host in request.hosts:
            try:
                actors[host] = ray.get_actor(f"{request.owner}/{host}", namespace=self.namespace)
            except ValueError:
                return None  # gone with its node: the job cannot go on
        group = PlacementGroup(ray.PlacementGroupID(bytes.fromhex(groups[0])))
        return RayPlacement.adopted(self, request, group, actors)

    def recover(self, keep: Collection[str] = ()) -> None:
        """Every actor and placement group a killed server of this home left on the cluster goes,
        but those of the owners in `keep` (re-attached): each actor first closes its host (kills
        its sandbox, unmounts its volume, removes its network), so nothing stays on any node.
        The jobs are failed by the engine's recovery."""
        ray = self._ray
        from ray.util.placement_group import PlacementGroup, remove_placement_group

        kept = {self.group_prefix + owner for owner in keep}
        for named in ray.util.list_named_actors(all_namespaces=True):
            if named["namespace"] != self.namespace or named["name"].rsplit("/", 1)[0] in keep:
                continue
            try:
                actor = ray.get_actor(named["name"], namespace=self.namespace)
            except ValueError:
                continue  # ended meanwhile
            _close_actor(ray, actor, named["name"])
        for group_id, info in ray.util.placement_group_table().items():
            name = info.get("name") or ""
            if (
                name.startswith(self.group_prefix)
                and name not in kept
                and info.get("state") != "REMOVED"
            ):
                group = PlacementGroup(ray.PlacementGroupID(bytes.fromhex(group_id)))
                with contextlib.suppress(Exception):  # removed meanwhile
                    remove_placement_group(group)

    @property
    def group_prefix(self) -> str:
        """What this server's placement groups are named with (Ray's are cluster-wide)."""
        return f"{_PLACEMENT_PREFIX}{self.namespace}:"

    def close(self) -> None:
        pass


class RayPlacement(Placement):
    def __init__(
        self,
        backend: RayBackend,
        request: PlacementRequest,
        group: Any,
        bundle: Mapping[str, float],
        subnet: Any,
    ) -> None:
        self.backend = backend
        self.request = request
        self.hosts = list(request.hosts)
        self._group = group
        self._bundle = dict(bundle)
        self._subnet = subnet
        self._addresses = host_addresses(subnet, self.hosts)
        self._actors: dict[str, Any] = {}
        self._nodes: dict[str, Node] = {}
        self._volumes: dict[str, RemoteVolume] = {}
        self._released = False
        self._lock = threading.Lock()
        # Per host, when re-attached: (its pid, the first line no server had read).
        self._attached: dict[str, tuple[int, int]] = {}

    @classmethod
    def adopted(
        cls, backend: RayBackend, request: PlacementRequest, group: Any, actors: dict[str, Any]
    ) -> RayPlacement | None:
        """The placement of actors a killed server made: their nodes, their subnet (held in
        the pool again) and their hosts as they are now; None when one cannot answer."""
        ray = backend._ray
        mark, token = str(backend.home_mark), backend.home_token
        try:
            answers = _get_each(ray, {h: a.attach.remote() for h, a in actors.items()})
            where = _get_each(ray, {h: a.node.remote(mark, token) for h, a in actors.items()})
        except Exception:
            logger.warning(
                "%s: hosts did not answer, not re-attached", request.owner, exc_info=True
            )
            return None
        plans = [plan for _, _, plan in answers.values()]
        if any(plan is None for plan in plans):
            return None  # a host that never started: the job was not running yet
        subnet = backend.subnets.claim(request.owner, plans[0].subnet)
        placement = cls(backend, request, group, {}, subnet)
        placement._actors = dict(actors)
        placement._nodes = {host: Node(*where[host]) for host in request.hosts}
        placement._attached = {host: (pid, since) for host, (pid, since, _) in answers.items()}
        return placement

    @property
    def _ray(self) -> Any:
        return self.backend._ray

    def start_actors(self) -> None:
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        bundle = self._bundle
        custom = {k: v for k, v in bundle.items() if k not in ("CPU", "memory", "GPU")}
        for index, host in enumerate(self.hosts):
            self._actors[host] = (
                self.backend.actor_class()
                .options(
                    name=f"{self.request.owner}/{host}",
                    namespace=self.backend.namespace,
                    lifetime="detached",
                    max_concurrency=_ACTOR_THREADS,
                    num_cpus=bundle["CPU"],
                    memory=bundle.get("memory"),
                    num_gpus=bundle.get("GPU", 0),
                    resources=custom or None,
                    max_restarts=0,
                    scheduling_strategy=PlacementGroupSchedulingStrategy(
                        self._group, placement_group_bundle_index=index
                    ),
                )
                .remote(self.backend.settings, host, self.request.owner)
            )
        mark, token = str(self.backend.home_mark), self.backend.home_token
        where = self._call(
            {host: actor.node.remote(mark, token) for host, actor in self._actors.items()}
        )
        self._nodes = {host: Node(node_id, address) for host, (node_id, address) in where.items()}

    def _call(self, pending: Mapping[str, Any], timeout: float = _CALL_SECONDS) -> dict[str, Any]:
        return _get_each(self._ray, pending, timeout, where=self._where)

    def _where(self, host: str) -> str:
        node = self._nodes.get(host)
        return node.describe() if node is not None else "its Ray node"

    def node_of(self, host: str) -> Node:
        return self._nodes[host]

    def host_addresses(self) -> dict[str, str]:
        return dict(self._addresses)

    def prepare(self, host: str, root: Path, volume_bytes: int) -> HostVolume:
        runtime = self.request.runtime
        self._call({host: self._actors[host].prepare.remote(runtime, str(root), volume_bytes)})
        volume = RemoteVolume(self, host, root, volume_bytes)
        volume.opt_ml.mkdir(parents=True, exist_ok=True)
        self._volumes[host] = volume
        return volume

    def load(self, host: str) -> None:
        staged = self._volumes[host].opt_ml
        self._call({host: self._actors[host].load.remote(str(staged))})

    def prepare_image(self, image: ImageUse, readable: FolderCheck, log: Log) -> list[str]:
        # Every node gets the image ready at once (each has its own environment cache).
        done = self._call(
            {h: a.prepare_image.remote(image, readable) for h, a in self._actors.items()},
            timeout=3600.0,
        )
        for host, (_, lines) in done.items():
            for line in lines:
                log(f"{host}: {line}")
        return list(done[self.hosts[0]][0])

    def attach(
        self, host: str, root: Path, volume_bytes: int, on_output: OutputSink
    ) -> tuple[HostVolume, RunningHost]:
        pid, since = self._attached[host]
        volume = RemoteVolume(self, host, root, volume_bytes)
        self._volumes[host] = volume
        actor, node = self._actors[host], self._nodes[host]
        return volume, RemoteHost(self._ray, actor, host, node, pid, on_output, since)

    def start(self, host: str, run: HostRun, on_output: OutputSink) -> RunningHost:
        node = self._nodes[host]
        peers = {
            self._addresses[peer]: self._nodes[peer].address for peer in self.hosts if peer != host
        }
        plan = HostNetworkPlan(
            address=self._addresses[host],
            subnet=str(self._subnet),
            hosts=dict(self._addresses),
            peer_nodes=peers,
            hosts_cidr=self.backend.settings.hosts_cidr,
            outside=self.request.outside,
        )
        node_env = {"DOCKYARD_NODE_IP": node.address, "DOCKYARD_NODE_ID": node.id}
        actor = self._actors[host]
        pid = self._call({host: actor.start.remote(run, plan, node_env)})[host]
        return RemoteHost(self._ray, actor, host, node, pid, on_output)

    def volume_full(self, host: str) -> bool:
        try:
            return bool(self._call({host: self._actors[host].volume_full.remote()})[host])
        except DockyardError:
            return False

    def connector(self, host: str) -> PortConnector:
        return AddressConnector(self._addresses[host])

    def collect(self, host: str, into: Path) -> OptMl:
        folder = into / host
        self._call({host: self._actors[host].collect.remote(str(folder))}, timeout=3600.0)
        return OptMl(folder)

    def release(self, remove: bool = False) -> None:
        with self._lock:
            if self._released:
                return
            self._released = True
        ray = self._ray
        for host, actor in self._actors.items():
            _close_actor(ray, actor, f"{self.request.owner}/{host}")
        _remove_group(ray, self._group)
        self.backend.subnets.give_back(self.request.owner)
        if remove:
            # The hosts' folders are on the path the server shares with the nodes.
            for volume in self._volumes.values():
                volume.remove()


def _get_each(
    ray: Any,
    pending: Mapping[str, Any],
    timeout: float = _CALL_SECONDS,
    where: Callable[[str], str] = lambda _host: "its Ray node",
) -> dict[str, Any]:
    """Wait for one remote call per host; a host whose actor (or node) is gone, or that does not
    answer in time, raises SandboxError naming its node (`where`); a DockyardError the actor
    raised is raised as it is."""
    results: dict[str, Any] = {}
    for host, ref in pending.items():
        try:
            results[host] = ray.get(ref, timeout=timeout)
        except ray.exceptions.RayActorError as exc:
            raise SandboxError(f"{host} on {where(host)} was lost: {exc}") from None
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(exc.cause, Exception) else exc
            if isinstance(cause, DockyardError):
                raise cause from None
            raise SandboxError(f"{host} on {where(host)}: {cause}") from None
        except ray.exceptions.GetTimeoutError:
            raise SandboxError(
                f"{host} on {where(host)} did not answer within {timeout:g} s"
            ) from None
    return results


def _close_actor(ray: Any, actor: Any, name: str) -> None:
    """Close the host (kill its sandbox, unmount its volume, remove its network), then end the
    actor; an actor that is gone already (its node lost) is just let go."""
    try:
        ray.get(actor.close.remote(), timeout=_CALL_SECONDS)
    except ray.exceptions.RayActorError:
        pass
    except Exception:
        logger.warning("host %s did not close cleanly", name, exc_info=True)
    with contextlib.suppress(Exception):  # gone already
        ray.kill(actor, no_restart=True)


def _remove_group(ray: Any, group: Any) -> None:
    """Remove a placement group and wait (a little) until Ray has taken it back, so what it
    held is free for the next request when this returns."""
    from ray.util.placement_group import placement_group_table, remove_placement_group

    try:
        remove_placement_group(group)
    except Exception:
        logger.warning("placement group %s not removed", group.id, exc_info=True)
        return
    deadline = time.monotonic() + _CALL_SECONDS / 6
    while time.monotonic() < deadline:
        if placement_group_table(group).get("state") == "REMOVED":
            return
        time.sleep(0.05)


class RemoteVolume:
    """The engine's side of a host's volume on a node: where it writes the host's /opt/ml
    (`<host folder>.staged/opt_ml`, loaded onto the volume by the actor) and how full the volume
    is. The volume itself is the actor's to unmount."""

    def __init__(self, placement: RayPlacement, host: str, root: Path, size_bytes: int) -> None:
        self._placement = placement
        self._host = host
        self._root = root
        self._size = size_bytes

    @property
    def root(self) -> Path:
        return self._root

    @property
    def opt_ml(self) -> Path:
        return self._root.with_name(self._root.name + ".staged") / "opt_ml"

    def is_full(self) -> bool:
        return self._placement.volume_full(self._host)

    def describe_size(self) -> str:
        return describe_volume_size(self._size)

    def close(self) -> None:
        """The actor unmounts the volume when the placement is released."""

    def remove(self) -> None:
        """Delete the host's folder, its volume file and its staging, once the actor is gone."""
        for folder in (self._root, self.opt_ml.parent):
            shutil.rmtree(folder, ignore_errors=True)
        self._root.with_name(self._root.name + ".volume").unlink(missing_ok=True)


class RemoteHost(RunningHost):
    """A host running in an actor: its output read by a thread that asks the actor for what is
    new (waiting there up to a second), its signals sent to the actor."""

    def __init__(
        self,
        ray: Any,
        actor: Any,
        host: str,
        node: Node,
        pid: int,
        on_output: OutputSink,
        since: int = 0,
    ) -> None:
        self._ray = ray
        self._actor = actor
        self.host = host
        self.node = node
        self.pid = pid
        self._on_output = on_output
        self._since = since
        self._code: int | None = None
        self._oom = False
        self._lost: str | None = None
        self._done = threading.Event()
        threading.Thread(target=self._read, name=f"output-{host}", daemon=True).start()

    def _read(self) -> None:
        ray = self._ray
        since = self._since
        try:
            while True:
                batch: OutputBatch = ray.get(self._actor.output.remote(since, 1.0), timeout=30.0)
                if batch.dropped:
                    self._on_output("stderr", f"[dockyard] {batch.dropped} lines were lost")
                for stream, line in batch.lines:
                    self._on_output(stream, line)
                since = batch.next
                if batch.exit_code is not None:
                    self._oom = batch.out_of_memory
                    self._code = batch.exit_code
                    return
        except (ray.exceptions.RayActorError, ray.exceptions.GetTimeoutError) as exc:
            self._lost = f"{self.host} on {self.node.describe()} was lost: {_first_line(exc)}"
            self._code = 137
        finally:
            self._done.set()

    def wait(self, timeout: float | None = None) -> int | None:
        self._done.wait(timeout)
        return self._code if self._done.is_set() else None

    def signal(self, sig: int) -> None:
        self._actor.signal.remote(sig)

    def kill(self) -> None:
        self._actor.kill.remote()

    @property
    def returncode(self) -> int | None:
        return self._code if self._done.is_set() else None

    @property
    def out_of_memory(self) -> bool:
        return self._oom

    @property
    def lost(self) -> str | None:
        return self._lost


def _holds(resources: Mapping[str, float], bundle: Mapping[str, float]) -> bool:
    return all(resources.get(name, 0.0) >= amount for name, amount in bundle.items())


def _describe(resources: Mapping[str, float]) -> str:
    parts = [f"{resources.get('CPU', 0):g} CPU"]
    if "memory" in resources:
        parts.append(f"{resources['memory'] / GIB:.1f} GiB")
    if resources.get("GPU"):
        parts.append(f"{resources['GPU']:g} GPU")
    parts += [f"{v:g} {k}" for k, v in resources.items() if k.startswith("ml.")]
    return ", ".join(parts)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
