"""SageMaker training job operations on the wire: CreateTrainingJob, Describe, List, Stop."""

from __future__ import annotations

import math
from typing import Any

from dockyard.api.protocol import Operation
from dockyard.contract.training_jobs import (
    CreateTrainingJobRequest,
    DescribeTrainingJobResponse,
    ListTrainingJobsRequest,
    ListTrainingJobsResponse,
    MetricData,
    ModelArtifacts,
    SecondaryStatus,
    SecondaryStatusTransition,
    TrainingJobNameRequest,
    TrainingJobStatus,
    TrainingJobSummary,
)
from dockyard.engine.core import Engine
from dockyard.storage.metadata import TrainingJobView


def described(view: TrainingJobView) -> DescribeTrainingJobResponse:
    record = view.record
    request, state = record.request, record.state
    start, end = state.training_start_time, state.training_end_time
    # Whole seconds, rounded up, as SageMaker bills: a 0.6 s job reports 1.
    seconds = math.ceil(max(end - start, 0)) if start is not None and end is not None else None
    return DescribeTrainingJobResponse(
        training_job_name=record.name,
        training_job_arn=record.arn,
        model_artifacts=ModelArtifacts(s3_model_artifacts=state.model_artifacts),
        training_job_status=TrainingJobStatus(record.status or TrainingJobStatus.IN_PROGRESS),
        secondary_status=state.secondary_status,
        failure_reason=state.failure_reason or None,
        hyper_parameters=request.hyper_parameters,
        algorithm_specification=request.algorithm_specification,
        role_arn=request.role_arn,
        input_data_config=request.input_data_config or None,
        # SageMaker answers an empty KmsKeyId when none was given, and the SageMaker SDK's
        # Estimator.attach reads it unconditionally.
        output_data_config=request.output_data_config.model_copy(
            update={"kms_key_id": request.output_data_config.kms_key_id or ""}
        ),
        resource_config=request.resource_config,
        stopping_condition=request.stopping_condition,
        creation_time=record.creation_time,
        training_start_time=start,
        training_end_time=end,
        last_modified_time=record.last_modified_time or record.creation_time,
        secondary_status_transitions=[
            SecondaryStatusTransition(
                status=SecondaryStatus(t.status),
                start_time=t.start_time,
                end_time=t.end_time,
                status_message=t.message or None,
            )
            for t in view.transitions
        ],
        final_metric_data_list=[
            MetricData(metric_name=p.metric_name, value=p.value, timestamp=p.timestamp)
            for p in view.final_metrics
        ]
        or None,
        enable_network_isolation=bool(request.enable_network_isolation),
        enable_inter_container_traffic_encryption=bool(
            request.enable_inter_container_traffic_encryption
        ),
        enable_managed_spot_training=bool(request.enable_managed_spot_training),
        checkpoint_config=request.checkpoint_config,
        training_time_in_seconds=seconds,
        billable_time_in_seconds=seconds,
        environment=request.environment or None,
        retry_strategy=request.retry_strategy,
    )


def operations(engine: Engine) -> dict[str, Operation]:
    jobs = engine.training_jobs
    in_progress = TrainingJobStatus.IN_PROGRESS

    def create(body: dict[str, Any]) -> dict[str, Any]:
        request = CreateTrainingJobRequest.from_wire(body)
        return {"TrainingJobArn": jobs.create(request)}

    def describe(body: dict[str, Any]) -> dict[str, Any]:
        view = jobs.describe(TrainingJobNameRequest.from_wire(body).training_job_name)
        return described(view).to_wire()

    def list_(body: dict[str, Any]) -> dict[str, Any]:
        page = jobs.list(ListTrainingJobsRequest.from_wire(body))
        summaries = [
            TrainingJobSummary(
                training_job_name=job.name,
                training_job_arn=job.arn,
                creation_time=job.creation_time,
                training_end_time=job.state.training_end_time,
                last_modified_time=job.last_modified_time,
                training_job_status=TrainingJobStatus(job.status or in_progress),
                secondary_status=job.state.secondary_status,
            )
            for job in page.items
        ]
        return ListTrainingJobsResponse(
            training_job_summaries=summaries, next_token=page.next_token
        ).to_wire()

    def stop(body: dict[str, Any]) -> dict[str, Any]:
        jobs.stop(TrainingJobNameRequest.from_wire(body).training_job_name)
        return {}

    return {
        "CreateTrainingJob": create,
        "DescribeTrainingJob": describe,
        "ListTrainingJobs": list_,
        "StopTrainingJob": stop,
    }
