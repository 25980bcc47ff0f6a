"""SageMaker training job operations on the wire: CreateTrainingJob, Describe, List, Stop."""

from __future__ import annotations

from typing import Any

from dockyard.api.protocol import Operation
from dockyard.contract.training_jobs import (
    CreateTrainingJobRequest,
    ListTrainingJobsRequest,
    TrainingJobNameRequest,
)
from dockyard.engine.core import Engine


def operations(engine: Engine) -> dict[str, Operation]:
    jobs = engine.training_jobs

    def create(body: dict[str, Any]) -> dict[str, Any]:
        request = CreateTrainingJobRequest.from_wire(body)
        return {"TrainingJobArn": jobs.create(request)}

    def describe(body: dict[str, Any]) -> dict[str, Any]:
        return jobs.describe(TrainingJobNameRequest.from_wire(body).training_job_name)

    def list_(body: dict[str, Any]) -> dict[str, Any]:
        return jobs.list(ListTrainingJobsRequest.from_wire(body)).to_wire()

    def stop(body: dict[str, Any]) -> dict[str, Any]:
        jobs.stop(TrainingJobNameRequest.from_wire(body).training_job_name)
        return {}

    return {
        "CreateTrainingJob": create,
        "DescribeTrainingJob": describe,
        "ListTrainingJobs": list_,
        "StopTrainingJob": stop,
    }
