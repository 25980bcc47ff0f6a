"""The one place a runtime is chosen: by name, from the server's settings (DOCKYARD_RUNTIME)."""

from __future__ import annotations

from dockyard.contract.errors import ValidationError
from dockyard.runtimes.base import Runtime
from dockyard.runtimes.environments import Environments
from dockyard.runtimes.frameworks import load_frameworks_file
from dockyard.runtimes.process import ProcessRuntime
from dockyard.runtimes.process_images import ProcessImages
from dockyard.settings import Settings


def open_runtime(settings: Settings) -> Runtime:
    """The runtime `settings.runtime` names, made from the settings; nothing starts yet."""
    if settings.runtime == "process":
        return process_runtime(settings)
    raise ValidationError(
        f"DOCKYARD_RUNTIME={settings.runtime}: the {settings.runtime} runtime is not available "
        "yet; use DOCKYARD_RUNTIME=process (the default)"
    )


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
