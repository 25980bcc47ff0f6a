"""The engine: the shared context and the resource services, opened from settings."""

from __future__ import annotations

from dockyard.engine.context import EngineContext
from dockyard.engine.endpoints import Endpoints
from dockyard.engine.image_builds import ImageBuilds
from dockyard.engine.job_folders import JobFolders
from dockyard.engine.models import EndpointConfigs, Models
from dockyard.engine.router import Router
from dockyard.engine.scheduler import Capacity
from dockyard.engine.tags import Tags
from dockyard.engine.training_jobs import TrainingJobs
from dockyard.engine.transform_jobs import TransformJobs
from dockyard.runtimes import cgroups
from dockyard.runtimes.environments import Environments
from dockyard.runtimes.frameworks import load_frameworks_file
from dockyard.runtimes.process import ProcessRuntime
from dockyard.runtimes.volumes import unmount_all_under
from dockyard.settings import Settings
from dockyard.storage.metadata import MetadataStore
from dockyard.storage.stores import store_from_settings


class Engine:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings
        self.metadata = ctx.metadata
        self.store = ctx.store
        self.training_jobs = TrainingJobs(ctx)
        self.models = Models(ctx)
        self.endpoint_configs = EndpointConfigs(ctx)
        self.router = Router()
        self.endpoints = Endpoints(ctx, self.models, self.endpoint_configs, self.router)
        self.transform_jobs = TransformJobs(ctx, self.models)
        self.image_builds = ImageBuilds(ctx)
        self.tags = Tags(ctx.metadata)
        self.job_folders = JobFolders(
            ctx.settings.jobs_dir,
            ctx.metadata,
            self.training_jobs.running_names,
            ctx.settings.job_folder_retention_hours,
        )

    @classmethod
    def open(cls, settings: Settings) -> Engine:
        """Open the stores, fail the jobs that a previous server left running and bring its
        endpoints back."""
        settings.home.mkdir(parents=True, exist_ok=True)
        ctx = EngineContext(
            settings=settings,
            metadata=MetadataStore(settings.metadata_url),
            store=store_from_settings(settings),
            runtime=ProcessRuntime(
                settings.bwrap,
                uid_base=settings.sandbox_uid_base,
                slirp4netns=settings.slirp4netns,
            ),
            capacity=Capacity(settings.cpus, settings.memory_gib, settings.gpus),
            environments=Environments(
                settings.envs_dir,
                settings.framework_python,
                # One uid below the sandboxes': an image build is never any job's user.
                build_uid=settings.sandbox_uid_base - 1,
                hidden=(settings.home.resolve(),),
                bwrap=settings.bwrap,
            ),
            frameworks=(
                load_frameworks_file(settings.frameworks_file) if settings.frameworks_file else {}
            ),
        )
        engine = cls(ctx)
        # A server killed with -9 leaves its hosts' volumes mounted and their cgroups empty.
        unmount_all_under(settings.home)
        cgroups.sweep()
        engine.training_jobs.recover()
        engine.endpoints.recover()
        engine.transform_jobs.recover()
        engine.job_folders.start()
        return engine

    def close(self) -> None:
        self.job_folders.close()
        self.training_jobs.shutdown()
        self.endpoints.shutdown()
        self.transform_jobs.shutdown()
        self.metadata.close()
