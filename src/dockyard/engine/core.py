"""The engine: one object holding the stores, the runtime and the resource services."""

from __future__ import annotations

import logging
from pathlib import Path

from dockyard.engine.scheduler import Capacity
from dockyard.engine.training_jobs import TrainingJobs
from dockyard.runtimes.base import Runtime
from dockyard.runtimes.process import ProcessRuntime
from dockyard.settings import Settings
from dockyard.storage.metadata import MetadataStore
from dockyard.storage.objects import ObjectStore, open_object_store

log = logging.getLogger(__name__)


class Engine:
    def __init__(
        self,
        settings: Settings,
        metadata: MetadataStore,
        store: ObjectStore,
        runtime: Runtime,
    ) -> None:
        self.settings = settings
        self.metadata = metadata
        self.store = store
        self.runtime = runtime
        self.capacity = Capacity(settings.cpus, settings.memory_gib)
        self.training_jobs = TrainingJobs(self)

    @classmethod
    def open(cls, settings: Settings) -> Engine:
        settings.home.mkdir(parents=True, exist_ok=True)
        metadata = MetadataStore(settings.metadata_url)
        store = open_object_store(
            settings.store,
            root=settings.store_root,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            cache_dir=settings.cache_dir / "s3",
        )
        engine = cls(settings, metadata, store, ProcessRuntime(settings.bwrap))
        engine.training_jobs.recover()
        return engine

    @property
    def remote_store(self) -> bool:
        return self.settings.store != "local"

    @property
    def forbidden_paths(self) -> list[Path]:
        """Folders a job must never see or get as a channel: dockyard's own state."""
        return [self.settings.home.resolve()]

    def close(self) -> None:
        self.training_jobs.shutdown()
        self.metadata.close()
