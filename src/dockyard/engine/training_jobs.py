"""Training jobs: create, describe, list and stop; every status change goes through `transition`."""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from typing import Any

from dockyard.contract import names
from dockyard.contract.errors import ValidationError
from dockyard.contract.instance_types import instance_type
from dockyard.contract.opt_ml import CONTAINER_ROOT
from dockyard.contract.training_jobs import (
    CreateTrainingJobRequest,
    ListTrainingJobsRequest,
    ListTrainingJobsResponse,
    SecondaryStatus,
    TrainingJobStatus,
    TrainingJobSummary,
)
from dockyard.engine.artifacts import model_artifacts_uri
from dockyard.engine.code import find_code, submit_directory
from dockyard.engine.context import EngineContext
from dockyard.engine.lifecycle import TrainingLifecycle
from dockyard.engine.paging import decode_token, encode_token
from dockyard.engine.staging import find_channel_source
from dockyard.engine.training_run import TrainingRun
from dockyard.runtimes.frameworks import resolve_framework
from dockyard.runtimes.images import read_image
from dockyard.storage.metadata import TrainingJobRecord, Transition
from dockyard.storage.objects import S3Uri

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
        record = TrainingJobRecord(
            name=request.training_job_name,
            arn=names.arn(
                "training-job",
                request.training_job_name,
                self.ctx.settings.region,
                self.ctx.settings.account_id,
            ),
            status=TrainingJobStatus.IN_PROGRESS.value,
            secondary_status=SecondaryStatus.STARTING.value,
            request=json.dumps(request.to_wire()),
            failure_reason=None,
            model_artifacts=model_artifacts_uri(
                request.output_data_config.s3_output_path, request.training_job_name
            ),
            creation_time=now,
            last_modified_time=now,
            training_start_time=None,
            training_end_time=None,
            stop_requested=False,
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
        if resolve_framework(spec.training_image, self.ctx.frameworks) is None:
            image = read_image(spec.training_image)
            image.argv(spec.container_entrypoint, spec.container_arguments, "train")
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

    def describe(self, name: str) -> dict[str, Any]:
        view = self.ctx.metadata.training_job_view(name)
        record = view.record
        request = json.loads(record.request)
        out: dict[str, Any] = {
            "TrainingJobName": record.name,
            "TrainingJobArn": record.arn,
            "ModelArtifacts": {"S3ModelArtifacts": record.model_artifacts},
            "TrainingJobStatus": record.status,
            "SecondaryStatus": record.secondary_status,
        }
        if record.failure_reason:
            out["FailureReason"] = record.failure_reason
        out["HyperParameters"] = request.get("HyperParameters", {})
        out["AlgorithmSpecification"] = request["AlgorithmSpecification"]
        out["RoleArn"] = request["RoleArn"]
        if request.get("InputDataConfig"):
            out["InputDataConfig"] = request["InputDataConfig"]
        out["OutputDataConfig"] = request["OutputDataConfig"]
        out["ResourceConfig"] = request["ResourceConfig"]
        out["StoppingCondition"] = request["StoppingCondition"]
        out["CreationTime"] = record.creation_time
        if record.training_start_time is not None:
            out["TrainingStartTime"] = record.training_start_time
        if record.training_end_time is not None:
            out["TrainingEndTime"] = record.training_end_time
        out["LastModifiedTime"] = record.last_modified_time
        out["SecondaryStatusTransitions"] = [
            {
                "Status": t.status,
                "StartTime": t.start_time,
                **({"EndTime": t.end_time} if t.end_time is not None else {}),
                **({"StatusMessage": t.message} if t.message else {}),
            }
            for t in view.transitions
        ]
        final = view.final_metrics
        if final:
            out["FinalMetricDataList"] = [
                {"MetricName": p.metric_name, "Value": p.value, "Timestamp": p.timestamp}
                for p in final
            ]
        out["EnableNetworkIsolation"] = bool(request.get("EnableNetworkIsolation", False))
        out["EnableInterContainerTrafficEncryption"] = bool(
            request.get("EnableInterContainerTrafficEncryption", False)
        )
        out["EnableManagedSpotTraining"] = bool(request.get("EnableManagedSpotTraining", False))
        if request.get("CheckpointConfig"):
            out["CheckpointConfig"] = request["CheckpointConfig"]
        if record.training_start_time is not None and record.training_end_time is not None:
            # Whole seconds, rounded up, as SageMaker bills: a 0.6 s job reports 1.
            seconds = math.ceil(max(record.training_end_time - record.training_start_time, 0))
            out["TrainingTimeInSeconds"] = seconds
            out["BillableTimeInSeconds"] = seconds
        if request.get("Environment"):
            out["Environment"] = request["Environment"]
        if request.get("RetryStrategy"):
            out["RetryStrategy"] = request["RetryStrategy"]
        return out

    def list(self, request: ListTrainingJobsRequest) -> ListTrainingJobsResponse:
        offset = decode_token(request.next_token)
        if request.warm_pool_status_equals or request.training_plan_arn_equals:
            return ListTrainingJobsResponse(training_job_summaries=[])
        rows = self.ctx.metadata.list_training_jobs(
            name_contains=request.name_contains,
            status=request.status_equals.value if request.status_equals else None,
            creation_after=request.creation_time_after,
            creation_before=request.creation_time_before,
            modified_after=request.last_modified_time_after,
            modified_before=request.last_modified_time_before,
            sort_by=request.sort_by,
            descending=request.sort_order == "Descending",
            offset=offset,
            limit=request.max_results + 1,
        )
        page, more = rows[: request.max_results], len(rows) > request.max_results
        summaries = [
            TrainingJobSummary.model_validate(
                {
                    "TrainingJobName": r.name,
                    "TrainingJobArn": r.arn,
                    "CreationTime": r.creation_time,
                    "TrainingEndTime": r.training_end_time,
                    "LastModifiedTime": r.last_modified_time,
                    "TrainingJobStatus": r.status,
                    "SecondaryStatus": r.secondary_status,
                }
            )
            for r in page
        ]
        token = encode_token(offset + len(page)) if more else None
        return ListTrainingJobsResponse(training_job_summaries=summaries, next_token=token)

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

    def recover(self) -> None:
        """Jobs that were running when the server last stopped cannot be re-attached (their
        sandboxes died with it): fail them with a reason that says so."""
        for record in self.ctx.metadata.training_jobs_with_status(
            [TrainingJobStatus.IN_PROGRESS.value, TrainingJobStatus.STOPPING.value]
        ):
            self.lifecycle.fail_orphan(
                record.name,
                "InternalServerError: the dockyard server stopped while this job was running; "
                "start the job again under a new name",
            )

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
