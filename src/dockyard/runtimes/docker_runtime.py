"""The docker runtime: each host of a job runs as a container of a Docker engine (or podman's
Docker-compatible service), talked to through the docker SDK, on the host's own bounded volume and
a network of the job's own. Everything it makes is labelled with dockyard's home, so what a server
killed with -9 left behind is found and removed at the next start."""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import docker
import docker.errors

from dockyard.contract.errors import ImageError, SandboxError
from dockyard.runtimes.base import (
    FolderCheck,
    HostSpec,
    ImageCheck,
    Log,
    OutputSink,
    Purpose,
    ResolvedImage,
    Runtime,
)
from dockyard.runtimes.docker_hosts import (
    OPT_ML,
    ContainerPlan,
    DockerHost,
    attach_output,
    container_plan,
    find_program,
    remove_container,
)
from dockyard.runtimes.docker_images import (
    HOME_LABEL,
    AuthFor,
    DockerImage,
    DockerImageRef,
    DockerImages,
    Locate,
)
from dockyard.runtimes.docker_networks import NETWORK_LABEL, DockerNetwork
from dockyard.runtimes.docker_pulls import is_podman
from dockyard.runtimes.images import DEFAULT_PATH
from dockyard.runtimes.routed_network import RoutedNetwork
from dockyard.runtimes.volumes import HostFolder, make_mount_points, unmount_all_under

FOLDER_LABEL = "dockyard.folder"
# The server run that made a container or network (a random id per server start).
RUN_LABEL = "dockyard.run"
HOST_LABEL = "dockyard.host"
ROLE_LABEL = "dockyard.role"
# Messages of an OCI runtime that could not find the program to run (runc, crun).
# Docker 20.10's API, which podman's service speaks too; fixed, so that making a runtime does not
# ask the engine (it may start later than dockyard).
API_VERSION = "1.41"
_T = TypeVar("_T")
_LabelTest = Callable[[Mapping[str, str]], bool]
# What runc says, now and then on a loaded machine, when its child died while being set up: the
# same container starts on a second try.
_TRANSIENT = ("can't get final child's PID from pipe", "unable to start container process")
_START_ATTEMPTS = 3
_REMOVERS = 8  # containers removed at once by a sweep: each removal waits for a kill
logger = logging.getLogger(__name__)
_NO_PROGRAM = ("executable file not found", "no such file or directory", "not found in $path")


class DockerRuntime(Runtime):
    """Runs each host as a container of the Docker engine at `base_url`."""

    name = "docker"

    def __init__(
        self,
        base_url: str,
        home: Path,
        *,
        locate: Locate | None = None,
        auth_for: AuthFor | None = None,
    ) -> None:
        self.home = home
        self.base_url = base_url
        self.client = docker.DockerClient(base_url=base_url, version=API_VERSION, timeout=120)
        # Output streams and waits last as long as a host runs: no read timeout for them.
        self._streams = docker.APIClient(base_url=base_url, version=API_VERSION, timeout=None)
        self._podman: bool | None = None  # whether the engine is podman, asked once
        self.images = DockerImages(
            self.client,
            home,
            locate=locate,
            auth_for=auth_for,
            engine_is_podman=self._is_podman,
        )
        # This server's run: what a previous server of the home made has another.
        self._run = uuid.uuid4().hex
        self._leftovers = False
        self._leftovers_lock = threading.Lock()
        # Where each image's programs were found: an image id names fixed content, so a program
        # of the image's own files is where it was the last time (asking the engine costs a
        # mount of the container's filesystem, ~80 ms on podman, for every host started).
        self._programs: dict[tuple[str, str, str, str], str] = {}

    def _labels(self) -> dict[str, str]:
        return {HOME_LABEL: str(self.home), RUN_LABEL: self._run}

    # -- images ------------------------------------------------------------------------------

    def resolve(self, ref: str, readable: FolderCheck) -> DockerImageRef:
        return self.images.resolve(ref, readable)

    def prepare_image(
        self, image: ResolvedImage, *, code: Path | None, purpose: Purpose, log: Log
    ) -> DockerImage:
        # The code's requirements are the image's business: SageMaker's toolkits inside it
        # install them when the container starts, as on SageMaker.
        return self._engine_call(
            "prepare the image",
            lambda: self.images.prepare(_own_ref(image), purpose=purpose, log=log),
        )

    def check_image(self, image: ResolvedImage) -> ImageCheck:
        return self._engine_call("check the image", lambda: self.images.check(_own_ref(image)))

    def build_image(self, image: ResolvedImage, log: Log) -> None:
        self._engine_call("build the image", lambda: self.images.build(_own_ref(image), log))

    # -- hosts -------------------------------------------------------------------------------

    def prepare_host(self, root: Path, volume_bytes: int) -> HostFolder:
        _require_root()
        # Root of the container (Docker's default user) owns it; the volume bounds what the host
        # writes to /opt/ml and /tmp, as in the process runtime.
        return HostFolder.create(root, volume_bytes, 0)

    def create_network(self, *, outside: bool) -> DockerNetwork:
        # Every host is on a network made here: past this, no leftover can hold a host's name.
        self._remove_leftovers()
        return self._engine_call(
            "make a network",
            lambda: DockerNetwork.create(self.client, self._labels(), outside=outside),
        )

    def start(self, spec: HostSpec, on_output: OutputSink) -> DockerHost:
        return self._engine_call(f"start {spec.hostname}", lambda: self._start(spec, on_output))

    def _start(self, spec: HostSpec, on_output: OutputSink) -> DockerHost:
        image, folder, network = spec.image, spec.folder, spec.network
        if not isinstance(image, DockerImage):
            raise SandboxError(
                f"{spec.hostname}: the image was not made ready by the docker runtime"
            )
        if not isinstance(folder, HostFolder) or not isinstance(
            network, DockerNetwork | RoutedNetwork
        ):
            raise SandboxError(
                f"{spec.hostname}: its folder and network were not made by the docker runtime"
            )
        if isinstance(network, RoutedNetwork):
            # A cluster host's routed network: the container joins its namespace, which only
            # podman's Docker-compatible API can do (`ns:` network mode).
            if not self._is_podman():
                raise SandboxError(
                    f"{spec.hostname}: the docker runtime on a cluster node joins the host's "
                    "routed network namespace, which takes podman's Docker-compatible service "
                    "(DOCKYARD_DOCKER_HOST on every node); Docker's API cannot"
                )
            mode, address, network_name = f"ns:/proc/{os.getpid()}/fd/{network.fd}", None, ""
        else:
            mode = network_name = network.name
            address = network.address_of(spec.hostname)
        if not spec.argv:
            raise SandboxError(f"no program to run on {spec.hostname}")
        make_mount_points(folder.opt_ml, spec.read_only_binds)
        labels = {
            **self._labels(),
            FOLDER_LABEL: str(folder.root),
            HOST_LABEL: spec.hostname,
            ROLE_LABEL: image.purpose,
        }
        if network_name:  # a network of the engine's, removed with the container's leftovers
            labels[NETWORK_LABEL] = network_name
        plan = container_plan(
            self.client.api,
            spec,
            image_id=image.image_id,
            network=mode,
            address=address,
            opt_ml=folder.opt_ml,
            tmp=folder.tmp,
            labels=labels,
        )
        container_id, output = "", None
        for attempt in range(1, _START_ATTEMPTS + 1):
            try:
                container_id, output = self._create_and_start(plan, spec, image)
                break
            except _TransientStart as exc:
                if attempt == _START_ATTEMPTS:
                    raise SandboxError(f"could not start {spec.hostname}: {exc}") from exc
                logger.warning("%s: the engine failed to start it (%s); again", spec.hostname, exc)
                time.sleep(0.2 * attempt)
        return DockerHost(
            self.client,
            self._streams,
            container_id,
            output,
            on_output,
            memory_limited=spec.limits.memory_bytes is not None,
            podman=self._is_podman(),
        )

    def _is_podman(self) -> bool:
        """Whether the engine is podman (asked once): its own API waits for an exit sooner."""
        if self._podman is None:
            self._podman = self._engine_call("ask the engine what it is", self._ask_podman)
        return self._podman

    def _ask_podman(self) -> bool:
        return is_podman(self.client)

    def _create_and_start(
        self, plan: ContainerPlan, spec: HostSpec, image: DockerImage
    ) -> tuple[str, Any]:
        """One attempt: the container made, its program found, its output attached, started; its
        id and its output."""
        api = self.client.api
        try:
            # The whole argv is given: the image's ENTRYPOINT and CMD are already in it.
            made = api.create_container(
                plan.image,
                plan.argv[1:],
                entrypoint=plan.argv[:1],
                hostname=plan.hostname,
                environment=plan.env,
                labels=plan.labels,
                host_config=plan.host_config,
                networking_config=plan.networking_config,
            )
        except docker.errors.APIError as exc:
            raise SandboxError(
                f"could not make the container of {spec.hostname}: {exc.explanation or exc}"
            ) from exc
        container_id = str(made["Id"])
        output = None
        try:
            path = spec.env.get("PATH") or image.env.get("PATH") or DEFAULT_PATH
            if self._find_program(container_id, spec, image, path) is None:
                where = spec.argv[0] if "/" in spec.argv[0] else f"any folder of its PATH ({path})"
                raise ImageError(
                    f"the program {spec.argv[0]} is not in the image {image.ref}: nothing at "
                    f"{where}; add it to the image, or give its full path"
                )
            output = attach_output(self._streams, container_id)
            api.start(container_id)
        except BaseException as exc:
            if output is not None:
                with contextlib.suppress(OSError):
                    output.close()
            with contextlib.suppress(docker.errors.APIError):
                remove_container(api, container_id)
            if not isinstance(exc, docker.errors.APIError):
                raise
            message = str(exc.explanation or exc)
            if any(words in message.lower() for words in _NO_PROGRAM):
                raise ImageError(
                    f"the program {spec.argv[0]} is not in the image {image.ref} ({message}): "
                    "add it to the image's PATH, or give ContainerEntrypoint"
                ) from exc
            if any(words in message for words in _TRANSIENT):
                raise _TransientStart(message) from exc
            raise SandboxError(f"could not start {spec.hostname}: {message}") from exc
        return container_id, output

    def _find_program(
        self, container_id: str, spec: HostSpec, image: DockerImage, path: str
    ) -> str | None:
        key = (image.image_id, spec.argv[0], path, image.workdir)
        if key in self._programs:
            return self._programs[key]
        found = find_program(self.client.api, container_id, spec.argv[0], path, image.workdir)
        # Only a program in the image's own files is remembered: what the host's binds and
        # volume show (/opt/ml, /tmp) differs from one host to the next.
        mounted = [OPT_ML, "/tmp", *(destination for _, destination in spec.read_only_binds)]
        if found is not None and not any(_under(found, point) for point in mounted):
            self._programs[key] = found
        return found

    # -- cleanup -----------------------------------------------------------------------------

    def release(self, folder: Path) -> None:
        """Remove the containers of hosts under `folder` and the networks they were on, then
        unmount the hosts' volumes (even when the engine does not answer)."""
        prefix = str(folder).rstrip("/") + "/"
        try:
            self._engine_call(
                f"remove the containers of {folder}",
                lambda: self._sweep(
                    lambda labels: (labels.get(FOLDER_LABEL, "") + "/").startswith(prefix)
                ),
            )
        finally:
            unmount_all_under(folder)

    def recover(self, home: Path) -> None:
        """Remove every container and network a previous server of `home` made (they outlive
        it: the engine keeps a container whose maker died), then unmount the hosts' volumes.
        When the engine does not answer, that is done before this server makes its first
        network (SandboxError says so now)."""
        if home != self.home:
            raise SandboxError(f"the docker runtime of {self.home} cannot recover {home}")
        with self._leftovers_lock:
            self._leftovers = True
        try:
            self._remove_leftovers()
        finally:
            unmount_all_under(home)

    def _remove_leftovers(self) -> None:
        """What earlier servers of this home made, removed once (before any network of this
        server's exists, so there is no race with its own hosts; its run label tells its own
        apart anyway)."""
        with self._leftovers_lock:
            if not self._leftovers:
                return
            started = time.monotonic()
            containers, networks = self._engine_call(
                "remove what a previous server left",
                lambda: self._sweep(
                    lambda labels: labels.get(RUN_LABEL) != self._run, all_networks=True
                ),
            )
            self._leftovers = False
        if containers or networks:
            logger.warning(
                "removed %d containers and %d networks a previous server of %s left (%.2f s)",
                containers, networks, self.home, time.monotonic() - started,
            )  # fmt: skip

    def _sweep(self, matches: _LabelTest, *, all_networks: bool = False) -> tuple[int, int]:
        """Remove this home's containers whose labels match, at once (with force: what runs is
        killed), then the networks they were on, or (`all_networks`) every network of the home
        whose labels match; how many containers and networks went."""
        home = f"{HOME_LABEL}={self.home}"
        found = [
            container
            for container in self.client.containers.list(all=True, filters={"label": home})
            if matches(container.labels or {})
        ]
        networks = {
            container.labels[NETWORK_LABEL]
            for container in found
            if NETWORK_LABEL in container.labels
        }
        if found:
            with ThreadPoolExecutor(min(len(found), _REMOVERS)) as removers:
                # list() so that a failed removal raises here.
                list(removers.map(lambda c: remove_container(self.client.api, str(c.id)), found))
        if all_networks:
            networks |= {
                str(made.name)
                for made in self.client.networks.list(filters={"label": home})
                if matches(made.attrs.get("Labels") or {})
            }
        for name in networks:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_network(name)
        return len(found), len(networks)

    def _engine_call(self, what: str, call: Callable[[], _T]) -> _T:
        try:
            return call()
        except docker.errors.DockerException as exc:
            if isinstance(exc, docker.errors.APIError):
                detail = exc.explanation or str(exc)
            else:
                detail = str(exc)
            raise SandboxError(
                f"could not {what}: the Docker engine at {self.base_url} answered: {detail}"
            ) from exc
        except OSError as exc:  # the engine is not there
            raise SandboxError(
                f"could not {what}: no Docker engine at {self.base_url} ({exc}); start one, or "
                "set DOCKYARD_DOCKER_HOST"
            ) from exc


class _TransientStart(Exception):
    """A start that failed for the engine's reasons, not the image's: worth another try."""


def _own_ref(image: ResolvedImage) -> DockerImageRef:
    if not isinstance(image, DockerImageRef):
        raise ImageError(f"{image.ref} was not resolved by the docker runtime")
    return image


def _under(path: str, folder: str) -> bool:
    normal, top = posixpath.normpath(path), posixpath.normpath(folder)
    return normal == top or normal.startswith(top.rstrip("/") + "/")


def _require_root() -> None:
    if os.geteuid() != 0:
        raise SandboxError(
            "the docker runtime gives every host a volume of its own (a loop-mounted ext4), which "
            "takes root to set up: run the dockyard server as root"
        )
