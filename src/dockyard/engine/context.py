"""What every engine service shares: settings, stores, the runtimes, the capacity and the
backend that places hosts."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from dockyard.backends.base import Backend
from dockyard.backends.capacity import Capacity
from dockyard.engine.archives import ArchiveLimits
from dockyard.engine.local_paths import LocalPaths
from dockyard.runtimes.base import ResolvedImage, Runtime
from dockyard.runtimes.factory import Runtimes
from dockyard.settings import Settings
from dockyard.storage.metadata import MetadataStore
from dockyard.storage.objects import ObjectStore


@dataclass(frozen=True)
class EngineContext:
    settings: Settings
    metadata: MetadataStore
    store: ObjectStore
    runtimes: Runtimes
    capacity: Capacity
    backend: Backend

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

    def runtime_for(self, ref: str, requested: str | None = None) -> Runtime:
        """The runtime that runs image `ref` (`requested`: the dockyard:runtime tag's)."""
        return self.runtimes.for_image(ref, requested)

    def resolve_image(self, ref: str, requested: str | None = None) -> ResolvedImage:
        """The image `ref` names, through the runtime; a folder it reads (an image folder's
        Dockerfile and COPY sources) only where DOCKYARD_LOCAL_PATHS lets the server read for a
        job, so a caller (on another machine, perhaps) cannot name the server's other folders,
        hidden ones or dockyard's own as an image. Checked when a job or model is created and
        again when it is used."""
        return self.runtime_for(ref, requested).resolve(ref, self.local_paths.readable)

    @property
    def archive_limits(self) -> ArchiveLimits:
        settings = self.settings
        return ArchiveLimits(
            settings.archive_max_bytes, settings.archive_max_members, settings.archive_max_ratio
        )
