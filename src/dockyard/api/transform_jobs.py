"""SageMaker batch transform operations on the wire."""

from __future__ import annotations

from typing import Any

from dockyard.api.protocol import Operation
from dockyard.contract.transform_jobs import (
    CreateTransformJobRequest,
    DescribeTransformJobResponse,
    ListTransformJobsRequest,
    ListTransformJobsResponse,
    TransformJobNameRequest,
    TransformJobStatus,
    TransformJobSummary,
)
from dockyard.engine.core import Engine
from dockyard.engine.transform_jobs import TransformJobRecord


def described(record: TransformJobRecord) -> DescribeTransformJobResponse:
    request, state = record.request, record.state
    return DescribeTransformJobResponse(
        transform_job_name=record.name,
        transform_job_arn=record.arn,
        transform_job_status=TransformJobStatus(record.status or TransformJobStatus.IN_PROGRESS),
        failure_reason=state.failure_reason,
        model_name=request.model_name,
        max_concurrent_transforms=request.max_concurrent_transforms,
        model_client_config=request.model_client_config,
        max_payload_in_mb=request.max_payload_in_mb,
        batch_strategy=request.batch_strategy,
        environment=request.environment,
        transform_input=request.transform_input,
        transform_output=request.transform_output,
        transform_resources=request.transform_resources,
        data_processing=request.data_processing,
        creation_time=record.creation_time,
        transform_start_time=state.transform_start_time,
        transform_end_time=state.transform_end_time,
    )


def operations(engine: Engine) -> dict[str, Operation]:
    jobs = engine.transform_jobs

    def describe(body: dict[str, Any]) -> dict[str, Any]:
        record = jobs.describe(TransformJobNameRequest.from_wire(body).transform_job_name)
        return described(record).to_wire()

    def list_(body: dict[str, Any]) -> dict[str, Any]:
        page = jobs.list(ListTransformJobsRequest.from_wire(body))
        summaries = [
            TransformJobSummary(
                transform_job_name=job.name,
                transform_job_arn=job.arn,
                creation_time=job.creation_time,
                transform_end_time=job.state.transform_end_time,
                last_modified_time=job.last_modified_time or job.creation_time,
                transform_job_status=TransformJobStatus(
                    job.status or TransformJobStatus.IN_PROGRESS
                ),
                failure_reason=job.state.failure_reason,
            )
            for job in page.items
        ]
        return ListTransformJobsResponse(
            transform_job_summaries=summaries, next_token=page.next_token
        ).to_wire()

    def stop(body: dict[str, Any]) -> dict[str, Any]:
        jobs.stop(TransformJobNameRequest.from_wire(body).transform_job_name)
        return {}

    return {
        "CreateTransformJob": lambda body: {
            "TransformJobArn": jobs.create(CreateTransformJobRequest.from_wire(body))
        },
        "DescribeTransformJob": describe,
        "ListTransformJobs": list_,
        "StopTransformJob": stop,
    }
