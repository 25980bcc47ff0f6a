"""What every engine service shares: settings, stores, the runtime and the capacity."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from dockyard.engine.archives import ArchiveLimits
from dockyard.engine.local_paths import LocalPaths
from dockyard.engine.scheduler import Capacity
from dockyard.runtimes.base import Runtime
from dockyard.runtimes.environments import Environments
from dockyard.runtimes.frameworks import Framework
from dockyard.runtimes.images import ImageSpec, image_folder_path, read_image
from dockyard.settings import Settings
from dockyard.storage.metadata import MetadataStore
from dockyard.storage.objects import ObjectStore


@dataclass(frozen=True)
class EngineContext:
    settings: Settings
    metadata: MetadataStore
    store: ObjectStore
    runtime: Runtime
    capacity: Capacity
    environments: Environments
    # Frameworks added by the settings' frameworks file, beside the built-in ones.
    frameworks: dict[str, Framework]

    @property
    def remote_store(self) -> bool:
        """True when objects live elsewhere and must be downloaded to be staged."""
        return self.settings.store != "local"

    @property
    def forbidden_paths(self) -> list[Path]:
        """Folders a job must never see or get as a channel: dockyard's own state."""
        return [self.settings.home.resolve()]

    @cached_property
    def local_paths(self) -> LocalPaths:
        """Where file:// URIs and local paths may be read and written (DOCKYARD_LOCAL_PATHS)."""
        return LocalPaths.of(self.settings.local_paths, self.forbidden_paths)

    def image_folder(self, ref: str) -> ImageSpec:
        """The image folder `ref` names, read only where DOCKYARD_LOCAL_PATHS lets the server read
        for a job: an image's Dockerfile and COPY sources are the caller's, so a caller (on
        another machine, perhaps) must not name the server's other folders, hidden ones or
        dockyard's own as an image. Checked when a job or model is created and again when used."""
        folder = self.local_paths.readable(f"image {ref}", Path(image_folder_path(ref)))
        return read_image(str(folder))

    @property
    def archive_limits(self) -> ArchiveLimits:
        settings = self.settings
        return ArchiveLimits(
            settings.archive_max_bytes, settings.archive_max_members, settings.archive_max_ratio
        )
