"""Serving instances: a model's container started as `serve` in a sandbox with its own network
(so every instance may listen on 8080), placed by the backend (this machine, or a node of a
cluster), reached through its network, and checked with GET /ping. Endpoints and transform jobs
both run their models this way."""

from __future__ import annotations

import collections
import http.client
import shutil
import signal
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockyard.backends.base import HostRun, ImageUse, Node, Placement, PlacementRequest
from dockyard.contract.errors import DockyardError
from dockyard.contract.instance_types import instance_type as lookup_instance_type
from dockyard.contract.models import CreateModelRequest
from dockyard.contract.tags import requested_runtime
from dockyard.engine.code import find_code, stage_code
from dockyard.engine.context import EngineContext
from dockyard.engine.model_data import stage_model_data
from dockyard.engine.sizing import gpu_grant, host_limits, resource_env, volume_bytes
from dockyard.runtimes.base import (
    PortConnector,
    PreparedImage,
    RunningHost,
    Runtime,
)

PORT = 8080
MODEL_DIR = "/opt/ml/model"
PING_TIMEOUT = 2.0  # SageMaker's per-request /ping timeout
_TAIL_LINES = 20

Log = Callable[[str], None]


class InstanceFailed(DockyardError):
    """An instance did not start, or stopped answering; the message is a FailureReason."""


@dataclass(frozen=True)
class PreparedModel:
    """A model made ready to serve: its image, command, environment and the folders to show.
    Made once per variant; every instance of the variant shares it (read-only)."""

    runtime: Runtime  # the one that runs its instances
    use: ImageUse  # the image, for a backend whose instances get it ready where they run
    # Made ready here when the instances run on this machine (local backend); else None
    image: PreparedImage | None
    argv: list[str]
    env: dict[str, str]
    binds: list[tuple[Path, str]]
    hostname: str | None = None
    network_isolation: bool = False  # the model's EnableNetworkIsolation: no outside network


def prepare_model(
    ctx: EngineContext,
    model: CreateModelRequest,
    folder: Path,
    log: Log,
) -> PreparedModel:
    """Unpack the model data into `folder/model`, put script-mode code into its code/ folder,
    build (or reuse) a framework environment with the code's requirements, and check the
    image's RUN prerequisites. Raises InstanceFailed with a reason a user can act on."""
    if folder.exists():
        shutil.rmtree(folder)
    model_dir = folder / "model"
    container = model.container
    env = dict(container.environment)
    try:
        stage_model_data(
            container.model_data_url,
            ctx.store,
            model_dir,
            folder / "scratch",
            ctx.local_paths,
            ctx.archive_limits,
        )
        code_dir = model_dir / "code"
        submitted = env.get("SAGEMAKER_SUBMIT_DIRECTORY", "").strip()
        if submitted and not submitted.startswith(MODEL_DIR):
            # The SDK names a sourcedir.tar.gz (or, locally, a folder): staged as the toolkit
            # would download it, so the container needs no access to the store.
            source = find_code(submitted, ctx.store, ctx.local_paths)
            stage_code(source, ctx.store, code_dir, folder / "scratch", ctx.archive_limits)
            env["SAGEMAKER_SUBMIT_DIRECTORY"] = f"{MODEL_DIR}/code"
            log(f"code from {submitted} is in {MODEL_DIR}/code")
        shutil.rmtree(folder / "scratch", ignore_errors=True)
        runtime = ctx.runtime_for(container.image, requested_runtime(model.tags))
        use = ImageUse(container.image, runtime.name, "serve", code=code_dir)
        resolved = ctx.resolve_image(container.image, requested_runtime(model.tags))
        image: PreparedImage | None = None
        argv: list[str] = []
        if ctx.backend.name == "local":
            # Once for every instance of the variant: they all run on this machine.
            image = runtime.prepare_image(resolved, code=code_dir, purpose="serve", log=log)
            argv = image.command(None, None, "serve")
    except DockyardError as exc:
        raise InstanceFailed(f"ClientError: {exc}") from exc
    binds = [(model_dir, MODEL_DIR)]
    isolated = bool(model.enable_network_isolation)
    return PreparedModel(
        runtime, use, image, argv, env, binds, container.container_hostname, isolated
    )


@dataclass
class Instance:
    """One running container of a variant. `in_flight` and `idle` belong to the router's event
    loop; everything else is set before the instance is published."""

    name: str
    variant: str
    host: RunningHost
    connector: PortConnector  # reaches the instance's port
    folder: Path
    placement: Placement  # where it runs; released (and its folder removed) by `kill`
    node: Node  # the node its container runs on (the backend's word for it)
    log_tail: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=50))
    in_flight: int = 0
    idle: list[Any] = field(default_factory=list)  # keep-alive connections of the router
    served: int = 0
    started_at: float = field(default_factory=time.time)  # epoch seconds its container started
    _closing: threading.Lock = field(default_factory=threading.Lock)
    _closed: bool = False

    @property
    def exited(self) -> bool:
        return self.host.returncode is not None

    def http(self, timeout: float) -> http.client.HTTPConnection:
        """A blocking HTTP connection to the container's port, made inside its namespace."""
        return _NamespaceConnection(self.connector, timeout)

    def ping(self, timeout: float = PING_TIMEOUT) -> bool:
        connection = self.http(timeout)
        try:
            connection.request("GET", "/ping")
            response = connection.getresponse()
            response.read()
            return response.status == 200
        except (OSError, http.client.HTTPException):
            return False
        finally:
            connection.close()

    def wait_healthy(self, timeout: float, cancelled: threading.Event | None = None) -> None:
        """Poll /ping until it answers 200; InstanceFailed when the container exits first or the
        start-up window passes. Polls often at first: most servers are up within a second."""
        deadline = time.monotonic() + timeout
        pause = 0.05
        while True:
            if cancelled is not None and cancelled.is_set():
                raise InstanceFailed(f"{self.name} was stopped while starting")
            if self.exited:
                raise InstanceFailed(
                    f"The primary container for production variant {self.variant} exited with "
                    f"code {self.host.returncode} before it passed the ping health check"
                    + self._tail()
                )
            if self.ping(min(PING_TIMEOUT, max(0.1, deadline - time.monotonic()))):
                return
            if time.monotonic() >= deadline:
                raise InstanceFailed(
                    f"The primary container for production variant {self.variant} did not pass "
                    f"the ping health check within {timeout:g} seconds. Please check the "
                    "endpoint's log" + self._tail()
                )
            time.sleep(pause)
            pause = min(pause * 1.5, 1.0)

    def _tail(self) -> str:
        lines = list(self.log_tail)[-_TAIL_LINES:]
        return (": " + " | ".join(lines))[:600] if lines else ""

    def stop(self, grace: float) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds, as SageMaker stops instances."""
        if not self.exited:
            self.host.signal(signal.SIGTERM)
            if self.host.wait(timeout=grace) is None:
                self.host.kill()
        self.kill()  # whatever the program left behind in its group

    def kill(self) -> None:
        """SIGKILL everything of the instance; safe to call again, from any thread."""
        self.host.kill()
        self.host.wait(timeout=10)
        with self._closing:
            if not self._closed:
                self._closed = True
                self.connector.close()
                self.placement.release(remove=True)


class _NamespaceConnection(http.client.HTTPConnection):
    def __init__(self, connector: PortConnector, timeout: float) -> None:
        super().__init__("127.0.0.1", PORT, timeout=timeout)
        self._connector = connector

    def connect(self) -> None:
        self.sock = self._connector.connect(PORT, timeout=self.timeout or PING_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def start_instance(
    ctx: EngineContext,
    model: PreparedModel,
    *,
    name: str,
    variant: str,
    folder: Path,
    env: Mapping[str, str],
    on_line: Callable[[str], None],
    instance_type: str = "local",
    volume_gb: int | None = None,
) -> Instance:
    """Start one container of `model` on its own volume at `folder` (its /opt/ml, /tmp and home),
    in its own network, bounded as `instance_type`."""
    tail: collections.deque[str] = collections.deque(maxlen=50)

    def output(_stream: str, line: str) -> None:
        tail.append(line)
        on_line(line)

    gpus = gpu_grant(ctx.settings, instance_type, 1)
    policy = ctx.settings.gpu_shortage if gpus.short else None
    if policy in ("wait", "fail"):
        # Endpoint and transform instances start at once; nothing queues them for GPUs.
        raise InstanceFailed(f"{name}: {gpus.failure_reason(policy, queued=False)}")
    if policy == "cpu":
        on_line(f"[dockyard] {gpus.cpu_note()}")
    limits = host_limits(ctx.settings, instance_type)
    hostname = model.hostname or name
    request = PlacementRequest(
        # Unique among what runs: the instance's folder under the home.
        owner=folder.relative_to(ctx.settings.home).as_posix(),
        hosts=[hostname],
        instance=lookup_instance_type(instance_type or "local"),
        runtime=model.runtime.name,
        gpus_per_host=gpus.per_host,
        outside=not model.network_isolation,
        queue=False,
    )
    placement: Placement | None = None
    host: RunningHost | None = None
    try:
        placement = ctx.backend.place(
            request, on_wait=lambda why: on_line(f"[dockyard] {why}"), cancelled=lambda: False
        )
        assert placement is not None  # never cancelled
        placement.prepare(hostname, folder, volume_bytes(ctx.settings, volume_gb))
        placement.load(hostname)
        argv = model.argv
        if model.image is None or not placement.reuse_image(model.image):
            argv = placement.prepare_image(model.use, ctx.local_paths.readable, on_line)
        if ctx.backend.name != "local":
            on_line(f"[dockyard] {name} runs on {placement.node_of(hostname).describe()}")
        run = HostRun(
            argv=argv,
            env={**resource_env(limits, gpus), **model.env, **env},
            read_only_binds=model.binds,
            hidden_paths=ctx.forbidden_paths,
            limits=limits,
            gpus=gpus.per_host,
        )
        host = placement.start(hostname, run, output)
        connector = placement.connector(hostname)
    except BaseException as exc:
        # Whatever was made is released; a reason a user can act on names the instance.
        if host is not None:
            host.kill()
            host.wait(timeout=10)
        if placement is not None:
            placement.release(remove=True)
        if isinstance(exc, DockyardError):
            raise InstanceFailed(f"{name}: {exc}") from exc
        raise
    node = placement.node_of(hostname)
    return Instance(name, variant, host, connector, folder, placement, node, log_tail=tail)
