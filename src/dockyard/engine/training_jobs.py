"""Training jobs: create, describe, list and stop; every status change goes through `transition`."""

from __future__ import annotations

import logging
import threading
import time

from dockyard.contract import names
from dockyard.contract.errors import ValidationError
from dockyard.contract.instance_types import instance_type
from dockyard.contract.opt_ml import CONTAINER_ROOT
from dockyard.contract.tags import requested_runtime
from dockyard.contract.training_jobs import (
    CreateTrainingJobRequest,
    ListTrainingJobsRequest,
    SecondaryStatus,
    TrainingJobState,
    TrainingJobStatus,
)
from dockyard.engine.artifacts import model_artifacts_uri
from dockyard.engine.code import find_code, submit_directory
from dockyard.engine.context import EngineContext
from dockyard.engine.lifecycle import TrainingLifecycle
from dockyard.engine.paging import Page, resource_page
from dockyard.engine.staging import find_channel_source
from dockyard.engine.training_run import TrainingRun, placement_request
from dockyard.storage.metadata import TrainingJobView, Transition
from dockyard.storage.objects import S3Uri
from dockyard.storage.records import TRAINING_JOBS, Listed, TrainingJobRecord

log = logging.getLogger(__name__)

START_MESSAGE = "Starting the training job"


class TrainingJobs:
    def __init__(self, ctx: EngineContext) -> None:
        self.ctx = ctx
        self.lifecycle = TrainingLifecycle(ctx.metadata)
        self._runs: dict[str, TrainingRun] = {}
        self._guard = threading.Lock()

    # -- API operations ------------------------------------------------------------------------

    def create(self, request: CreateTrainingJobRequest) -> str:
        """Validate everything a user can get wrong before anything is stored or started."""
        self.validate(request)
        now = time.time()
        name = request.training_job_name
        settings = self.ctx.settings
        record = TrainingJobRecord(
            name=name,
            arn=names.arn(TRAINING_JOBS.name, name, settings.region, settings.account_id),
            creation_time=now,
            state=TrainingJobState(
                secondary_status=SecondaryStatus.STARTING,
                model_artifacts=model_artifacts_uri(
                    request.output_data_config.s3_output_path, name
                ),
            ),
            status=TrainingJobStatus.IN_PROGRESS,
            last_modified_time=now,
            request=request,
        )
        self.ctx.metadata.insert_training_job(
            record, Transition(SecondaryStatus.STARTING.value, now, None, START_MESSAGE)
        )
        run = TrainingRun(self.ctx, self.lifecycle, request, record, on_finished=self.finished)
        with self._guard:
            self._runs[record.name] = run
        run.start()
        return record.arn

    def validate(self, request: CreateTrainingJobRequest) -> None:
        # The type's GPUs are the runner's to grant or not (DOCKYARD_GPU_SHORTAGE).
        instance_type(request.resource_config.instance_type or "")
        spec = request.algorithm_specification
        assert spec.training_image is not None
        image = self.ctx.resolve_image(spec.training_image, requested_runtime(request.tags))
        image.check_command(spec.container_entrypoint, spec.container_arguments, "train")
        for channel in request.channels:
            if channel.s3.s3_data_type != "S3Prefix":
                raise ValidationError(
                    f"channel {channel.channel_name}: S3DataType {channel.s3.s3_data_type} is not "
                    "supported yet; use S3Prefix"
                )
            find_channel_source(
                channel.s3.s3_uri,
                self.ctx.store,
                local_paths=self.ctx.local_paths,
                remote=self.ctx.remote_store,
            )
        output = S3Uri.parse(request.output_data_config.s3_output_path)
        if self.ctx.remote_store and not self.ctx.store.bucket_exists(output.bucket):
            raise ValidationError(f"output bucket {output.bucket} does not exist: create it first")
        code = submit_directory(request.hyper_parameters)
        if code is not None:
            try:
                find_code(code, self.ctx.store, self.ctx.local_paths)
            except OSError as exc:  # e.g. a name too long for the file system to look up
                raise ValidationError(
                    f"sagemaker_submit_directory {code[:100]!r} cannot be read: {exc.strerror}"
                ) from None
        checkpoint = request.checkpoint_config
        if checkpoint is not None:
            S3Uri.parse(checkpoint.s3_uri)
            local = checkpoint.local_path or f"{CONTAINER_ROOT}/checkpoints"
            if not local.startswith(f"{CONTAINER_ROOT}/") or ".." in local.split("/"):
                raise ValidationError(
                    f"CheckpointConfig.LocalPath {local}: dockyard mirrors checkpoints only "
                    "under /opt/ml (the default is /opt/ml/checkpoints)"
                )

    def describe(self, name: str) -> TrainingJobView:
        return self.ctx.metadata.training_job_view(name)

    def list(self, request: ListTrainingJobsRequest) -> Page[Listed[TrainingJobState]]:
        if request.warm_pool_status_equals or request.training_plan_arn_equals:
            return Page([])
        return resource_page(self.ctx.metadata, TRAINING_JOBS, request)

    def stop(self, name: str) -> None:
        record = self.ctx.metadata.training_job(name)
        if record.status != TrainingJobStatus.IN_PROGRESS.value:
            if record.status == TrainingJobStatus.STOPPING.value:
                return
            raise ValidationError(
                f"Training job {name} is {record.status}; only InProgress jobs can be stopped"
            )
        with self._guard:
            run = self._runs.get(name)
        if run is None:
            raise ValidationError(f"Training job {name} is not running on this server")
        run.request_stop()

    # -- server lifecycle ----------------------------------------------------------------------

    def finished(self, name: str) -> None:
        with self._guard:
            self._runs.pop(name, None)
        self.lifecycle.forget(name)

    def recover(self) -> set[str]:
        """Jobs that were running when the server last stopped: those training on hosts that
        still run (a cluster's, the server killed with -9) are re-attached and go on; the others
        cannot be (their sandboxes died with the server) and are failed with a reason that says
        so. The names of the jobs re-attached."""
        resumed: set[str] = set()
        for record in self.ctx.metadata.resources_of_kind(
            TRAINING_JOBS, [TrainingJobStatus.IN_PROGRESS, TrainingJobStatus.STOPPING]
        ):
            if self._resume(self.ctx.metadata.training_job(record.name)):
                resumed.add(record.name)
                continue
            self.lifecycle.fail_orphan(
                record.name,
                "InternalServerError: the dockyard server stopped while this job was running; "
                "start the job again under a new name",
            )
        return resumed

    def _resume(self, record: TrainingJobRecord) -> bool:
        if record.state.secondary_status is not SecondaryStatus.TRAINING:
            return False  # not started, or already ending: nothing to go on with
        placement = self.ctx.backend.reattach(placement_request(self.ctx, record.request))
        if placement is None:
            return False
        run = TrainingRun(
            self.ctx, self.lifecycle, record.request, record, on_finished=self.finished
        )
        with self._guard:
            self._runs[record.name] = run
        run.resume(placement)
        return True

    def shutdown(self) -> None:
        with self._guard:
            runs = list(self._runs.values())
        for run in runs:
            run.abort()
        for run in runs:
            run.join(timeout=30)
        self.recover()

    def running_names(self) -> set[str]:
        with self._guard:
            return set(self._runs)

    def wait(self, name: str, timeout: float | None = None) -> None:
        """Block until a job's runner has finished (used by tests and benchmarks)."""
        with self._guard:
            run = self._runs.get(name)
        if run is not None:
            run.join(timeout)
