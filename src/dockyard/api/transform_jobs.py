"""SageMaker batch transform operations on the wire."""

from __future__ import annotations

from typing import Any

from dockyard.api.protocol import Operation
from dockyard.contract.transform_jobs import (
    CreateTransformJobRequest,
    ListTransformJobsRequest,
    TransformJobNameRequest,
)
from dockyard.engine.core import Engine


def operations(engine: Engine) -> dict[str, Operation]:
    jobs = engine.transform_jobs

    def stop(body: dict[str, Any]) -> dict[str, Any]:
        jobs.stop(TransformJobNameRequest.from_wire(body).transform_job_name)
        return {}

    return {
        "CreateTransformJob": lambda body: {
            "TransformJobArn": jobs.create(CreateTransformJobRequest.from_wire(body))
        },
        "DescribeTransformJob": lambda body: jobs.describe(
            TransformJobNameRequest.from_wire(body).transform_job_name
        ),
        "ListTransformJobs": lambda body: jobs.list(ListTransformJobsRequest.from_wire(body)),
        "StopTransformJob": stop,
    }
