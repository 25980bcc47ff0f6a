"""Where runtimes are made and chosen: each opened from the server's settings when first needed,
and the rule that picks one for an image (the `dockyard:runtime` tag, else the reference)."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from dockyard.contract.errors import DockyardError, ValidationError
from dockyard.runtimes.base import ImageRegistry, Runtime
from dockyard.runtimes.environments import Environments
from dockyard.runtimes.frameworks import load_frameworks_file, names_a_framework
from dockyard.runtimes.images import is_image_folder
from dockyard.runtimes.process import ProcessRuntime
from dockyard.runtimes.process_images import ProcessImages
from dockyard.settings import Settings

logger = logging.getLogger(__name__)


def open_runtime(
    settings: Settings, name: str | None = None, registry: ImageRegistry | None = None
) -> Runtime:
    """The runtime `name` (default: the server's, DOCKYARD_RUNTIME), made from the settings;
    one that pulls images takes ECR URIs' from `registry`."""
    name = name or settings.runtime
    if name == "process":
        return process_runtime(settings)
    if name == "docker":
        # Imported here, so the docker SDK loads only on a server that runs containers.
        from dockyard.runtimes.docker_runtime import DockerRuntime

        if registry is None:
            return DockerRuntime(settings.docker_host, settings.home)
        return DockerRuntime(
            settings.docker_host,
            settings.home,
            locate=registry.locate,
            auth_for=registry.auth_for,
        )
    raise ValidationError(f"the {name} runtime does not exist; use process (the default) or docker")


class Runtimes:
    """The runtimes one server runs hosts with. The process runtime is always there; another is
    opened the first time a job or model asks for it, so a server whose users never run a real
    image needs no container engine."""

    def __init__(
        self,
        settings: Settings,
        registry: ImageRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.registry = registry
        self._opened: dict[str, Runtime] = {}
        self._lock = threading.Lock()

    def named(self, name: str) -> Runtime:
        with self._lock:
            runtime = self._opened.get(name)
            if runtime is None:
                runtime = self._opened[name] = open_runtime(self.settings, name, self.registry)
            return runtime

    def choose(self, ref: str, requested: str | None = None) -> str:
        """The runtime for image `ref`: the one the `dockyard:runtime` tag asked for; else the
        docker runtime for a reference that is neither an image folder nor a framework image
        (only a container engine can run it); else the server's default."""
        if requested is not None:
            return requested
        if not self.is_process_image(ref):
            return "docker"
        return self.settings.runtime

    def for_image(self, ref: str, requested: str | None = None) -> Runtime:
        return self.named(self.choose(ref, requested))

    def is_process_image(self, ref: str) -> bool:
        """True when the process runtime runs `ref`: an image folder (a relative path to a
        folder too, so that it is refused as not absolute rather than pulled as a name), or an
        image named as a framework image (built as an environment, or refused with the list of
        the frameworks there are)."""
        if is_image_folder(ref) or names_a_framework(ref):
            return True
        return Path(ref).is_dir()

    def opened(self) -> list[Runtime]:
        with self._lock:
            return list(self._opened.values())

    def release(self, folder: Path) -> None:
        """Release what hosts under `folder` hold, in every runtime opened so far (the volumes
        are unmounted even when an engine does not answer: logged, as the folder may go)."""
        for runtime in self.opened():
            try:
                runtime.release(folder)
            except DockyardError as exc:
                logger.warning("%s not released by the %s runtime: %s", folder, runtime.name, exc)

    def recover(self, home: Path) -> None:
        """At server start: release what a killed server left. The process runtime and the
        server's default always; the docker runtime too when an engine is named (a job may have
        chosen it by its image), and otherwise nothing of it can be running to release. The
        docker runtime goes first: its containers still run (the engine keeps them) and hold
        the hosts' volumes the process runtime's recover unmounts. An engine that does not
        answer is logged, not fatal: the server starts, and the runtime removes the leftovers
        before it makes anything."""
        names = ["process", self.settings.runtime]
        if docker_engine_configured(self.settings):
            names.append("docker")
        for name in sorted(dict.fromkeys(names), key=lambda name: name != "docker"):
            if name == "process":
                self.named(name).recover(home)
                continue
            try:
                self.named(name).recover(home)
            except DockyardError as exc:
                logger.warning(
                    "the %s runtime was not recovered: %s. What a previous server left in it is "
                    "removed before this server's first job or endpoint there",
                    name,
                    exc,
                )


def docker_engine_configured(settings: Settings) -> bool:
    """True when a Docker engine is named (DOCKYARD_DOCKER_HOST, DOCKER_HOST) or sits at
    Docker's default socket."""
    url = settings.docker_host
    if url.startswith("unix://"):
        return os.path.exists(url.removeprefix("unix://"))
    return True


def process_runtime(settings: Settings) -> ProcessRuntime:
    environments = Environments(
        settings.envs_dir,
        settings.framework_python,
        # One uid below the sandboxes': an image build is never any job's user.
        build_uid=settings.sandbox_uid_base - 1,
        hidden=(settings.home.resolve(),),
        bwrap=settings.bwrap,
    )
    frameworks = load_frameworks_file(settings.frameworks_file) if settings.frameworks_file else {}
    return ProcessRuntime(
        settings.bwrap,
        uid_base=settings.sandbox_uid_base,
        slirp4netns=settings.slirp4netns,
        images=ProcessImages(environments, frameworks, toolkit_dir=settings.envs_dir),
    )
