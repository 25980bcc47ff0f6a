"""What every engine service shares: settings, stores, the runtime and the capacity."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dockyard.engine.scheduler import Capacity
from dockyard.runtimes.base import Runtime
from dockyard.runtimes.environments import Environments
from dockyard.runtimes.frameworks import Framework
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
