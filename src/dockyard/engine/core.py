"""The engine: the shared context and the resource services, opened from settings."""

from __future__ import annotations

from dockyard.backends.capacity import Capacity
from dockyard.backends.factory import open_backend
from dockyard.engine.context import EngineContext
from dockyard.engine.ecr_images import EcrImages
from dockyard.engine.endpoint_metrics import EndpointMetrics
from dockyard.engine.endpoints import Endpoints
from dockyard.engine.image_builds import ImageBuilds
from dockyard.engine.job_folders import JobFolders
from dockyard.engine.models import EndpointConfigs, Models
from dockyard.engine.registry import Registry
from dockyard.engine.repositories import Repositories
from dockyard.engine.router import Router
from dockyard.engine.tags import Tags
from dockyard.engine.training_jobs import TrainingJobs
from dockyard.engine.transform_jobs import TransformJobs
from dockyard.runtimes.factory import Runtimes
from dockyard.settings import Settings
from dockyard.storage.metadata import MetadataStore
from dockyard.storage.stores import store_from_settings


class Engine:
    def __init__(self, ctx: EngineContext, registry: Registry | None = None) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.metadata = ctx.metadata
        self.store = ctx.store
        self.training_jobs = TrainingJobs(ctx)
        self.models = Models(ctx)
        self.endpoint_configs = EndpointConfigs(ctx)
        self.router = Router()
        # Fed by the runtime API with every invocation the router delivered.
        self.endpoint_metrics = EndpointMetrics(
            ctx.metadata,
            enabled=ctx.settings.router_metrics,
            retention_days=ctx.settings.metrics_retention_days,
        )
        self.endpoints = Endpoints(ctx, self.models, self.endpoint_configs, self.router)
        self.transform_jobs = TransformJobs(ctx, self.models)
        self.image_builds = ImageBuilds(ctx)
        self.tags = Tags(ctx.metadata)
        # The image registry behind the ECR API; ECR image URIs resolve to it (ecr_images is
        # what a runtime that pulls images takes).
        self.registry = registry or Registry(ctx.settings)
        self.repositories = Repositories(ctx.settings, ctx.metadata, self.registry)
        self.ecr_images = EcrImages(self.registry)
        self.job_folders = JobFolders(
            ctx.settings.jobs_dir,
            ctx.metadata,
            self.training_jobs.running_names,
            ctx.settings.job_folder_retention_hours,
            release=ctx.runtimes.release,
        )

    @classmethod
    def open(cls, settings: Settings) -> Engine:
        """Open the stores, fail the jobs that a previous server left running and bring its
        endpoints back."""
        settings.home.mkdir(parents=True, exist_ok=True)
        metadata = MetadataStore(settings.metadata_url)
        metadata.claim()  # before recovering: what the database says runs must be ours
        registry = Registry(settings)
        runtimes = Runtimes(settings, EcrImages(registry))
        capacity = Capacity(settings.cpus, settings.memory_gib, settings.gpus)
        ctx = EngineContext(
            settings=settings,
            metadata=metadata,
            store=store_from_settings(settings),
            runtimes=runtimes,
            capacity=capacity,
            backend=open_backend(settings, runtimes, capacity),
        )
        engine = cls(ctx, registry)
        # Jobs whose hosts still run on a cluster (their actors outlive a killed server) are
        # re-attached first; the backend then gives back everything else the last server left.
        # A cluster's hosts on this machine hold volumes under the home: the runtimes recover
        # it only when every host runs here.
        resumed = engine.training_jobs.recover()
        ctx.backend.recover(keep=resumed)
        if ctx.backend.name == "local":
            ctx.runtimes.recover(settings.home)
        engine.endpoints.recover()
        engine.transform_jobs.recover()
        engine.job_folders.start()
        engine.endpoint_metrics.start()
        engine.registry.start_if_used()
        return engine

    def close(self) -> None:
        self.job_folders.close()
        self.training_jobs.shutdown()
        self.endpoints.shutdown()
        self.transform_jobs.shutdown()
        self.endpoint_metrics.close()  # the last seconds, before the database closes
        self.registry.close()
        self.ctx.backend.close()
        self.metadata.close()
