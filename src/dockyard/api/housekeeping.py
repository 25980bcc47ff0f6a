"""dockyard's own operations (X-Amz-Target `Dockyard.*`), beside SageMaker's: housekeeping that
SageMaker does for you, such as removing finished jobs' folders, and what `docker build` would
do for an image folder: checking its RUN lines and building its Python layer ahead of a job;
and what the console shows that SageMaker and CloudWatch have no call for (an endpoint's last
invocations, and its instances with their health)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from dockyard.api.protocol import Operation
from dockyard.contract.endpoints import EndpointName
from dockyard.contract.shapes import WireShape
from dockyard.engine.core import Engine

TARGET = "Dockyard"


class PruneJobFoldersRequest(WireShape):
    older_than_hours: Annotated[float, Field(ge=0, le=1e6)] = 0.0


class ImageRequest(WireShape):
    image: Annotated[str, Field(min_length=1, max_length=4096)]


class DescribeImageBuildRequest(WireShape):
    build_id: Annotated[str, Field(min_length=1, max_length=64)]
    start_line: Annotated[int, Field(ge=0)] = 0


class ListRecentInvocationsRequest(WireShape):
    endpoint_name: EndpointName


class DescribeEndpointInstancesRequest(WireShape):
    endpoint_name: EndpointName


def operations(engine: Engine) -> dict[str, Operation]:
    def prune_job_folders(body: dict[str, Any]) -> dict[str, Any]:
        request = PruneJobFoldersRequest.from_wire(body)
        pruned = engine.job_folders.prune(request.older_than_hours)
        return {"PrunedJobs": pruned.jobs, "FreedBytes": pruned.freed_bytes}

    def check_image(body: dict[str, Any]) -> dict[str, Any]:
        return engine.image_builds.check(ImageRequest.from_wire(body).image)

    def build_image(body: dict[str, Any]) -> dict[str, Any]:
        return engine.image_builds.start(ImageRequest.from_wire(body).image)

    def describe_image_build(body: dict[str, Any]) -> dict[str, Any]:
        request = DescribeImageBuildRequest.from_wire(body)
        return engine.image_builds.describe(request.build_id, request.start_line)

    def list_recent_invocations(body: dict[str, Any]) -> dict[str, Any]:
        request = ListRecentInvocationsRequest.from_wire(body)
        engine.endpoints.record(request.endpoint_name)  # NotFound for an endpoint that is not
        return {
            "Invocations": [
                {
                    "Time": i.time,
                    "VariantName": i.variant,
                    "InstanceName": i.instance,
                    "StatusCode": i.status,  # 0: the instance gave no answer
                    **(
                        {"ModelLatencyMicroseconds": i.model_microseconds}
                        if i.model_microseconds is not None
                        else {}
                    ),
                }
                for i in engine.endpoint_metrics.recent(request.endpoint_name)
            ]
        }

    def describe_endpoint_instances(body: dict[str, Any]) -> dict[str, Any]:
        request = DescribeEndpointInstancesRequest.from_wire(body)
        return {
            "Instances": [
                {
                    "VariantName": i.variant,
                    "InstanceName": i.instance,
                    "State": i.state,  # starting, healthy, serving or exited
                    "Healthy": i.healthy,  # in the router's rotation now
                    "InFlight": i.in_flight,
                    "Served": i.served,
                    "StartedAt": i.started_at,
                    **({"Node": i.node} if i.node else {}),
                }
                for i in engine.endpoints.instances(request.endpoint_name)
            ]
        }

    return {
        "PruneJobFolders": prune_job_folders,
        "CheckImage": check_image,
        "BuildImage": build_image,
        "DescribeImageBuild": describe_image_build,
        "ListRecentInvocations": list_recent_invocations,
        "DescribeEndpointInstances": describe_endpoint_instances,
    }
