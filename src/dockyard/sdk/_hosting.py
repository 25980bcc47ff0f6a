"""Hosting requests as the SDK builds them (`container_def`, `production_variant`) and waiting for
an endpoint as `Session.wait_for_endpoint` does: a `-` while it comes up, `!` once InService."""

from __future__ import annotations

import time
from typing import Any

from dockyard.sdk.exceptions import CapacityError, UnexpectedStatusException

POLL_SECONDS = 0.3
DOT_SECONDS = 1.0  # one `-` per second of waiting: the SDK prints one per 30 s poll
# Statuses an endpoint leaves by itself. SystemUpdating is dockyard bringing instances back (after
# a server restart or a crash); the SDK waits only for Creating and Updating, which AWS uses.
IN_PROGRESS = frozenset({"Creating", "Updating", "SystemUpdating"})
_SYMBOLS = {
    "OutOfService": "x",
    "Creating": "-",
    "Updating": "-",
    "InService": "!",
    "RollingBack": "<",
    "Deleting": "o",
    "Failed": "*",
}


def container_def(
    image_uri: str,
    model_data_url: str | None = None,
    env: dict[str, str] | None = None,
    container_mode: str | None = None,
    image_config: dict[str, Any] | None = None,
    **_aws_only: Any,
) -> dict[str, Any]:
    """A CreateModel container: Image, Environment and, when given, ModelDataUrl and Mode.
    `image_config` (a private registry) and the AWS-only arguments are not sent."""
    definition: dict[str, Any] = {"Image": image_uri, "Environment": dict(env or {})}
    if model_data_url is not None:
        definition["ModelDataUrl"] = model_data_url
    if container_mode:
        definition["Mode"] = container_mode
    return definition


def production_variant(
    model_name: str | None = None,
    instance_type: str | None = None,
    initial_instance_count: int | None = None,
    variant_name: str = "AllTraffic",
    initial_weight: float = 1,
    accelerator_type: str | None = None,
    serverless_inference_config: dict[str, Any] | None = None,
    volume_size: int | None = None,
    model_data_download_timeout: int | None = None,
    container_startup_health_check_timeout: int | None = None,
    **_aws_only: Any,
) -> dict[str, Any]:
    """One ProductionVariant of CreateEndpointConfig, named AllTraffic unless told otherwise."""
    refuse_aws_only(accelerator_type, serverless_inference_config)
    variant: dict[str, Any] = {"VariantName": variant_name}
    if model_name:
        variant["ModelName"] = model_name
        variant["InitialVariantWeight"] = initial_weight
    variant["InitialInstanceCount"] = initial_instance_count or 1
    variant["InstanceType"] = instance_type
    optional = {
        "VolumeSizeInGB": volume_size,
        "ModelDataDownloadTimeoutInSeconds": model_data_download_timeout,
        "ContainerStartupHealthCheckTimeoutInSeconds": container_startup_health_check_timeout,
    }
    variant.update({key: value for key, value in optional.items() if value is not None})
    return variant


def refuse_aws_only(accelerator_type: str | None, serverless_inference_config: Any) -> None:
    """Elastic Inference and serverless endpoints exist only on AWS: refused with a way out."""
    if accelerator_type:
        raise ValueError(
            "accelerator_type (Elastic Inference) exists only on AWS: leave it out; dockyard "
            "serves on this machine's CPUs"
        )
    if serverless_inference_config:
        raise ValueError(
            "serverless inference is not supported by dockyard: give an instance_type and an "
            "initial_instance_count instead"
        )


def wait_for_endpoint(sagemaker_client: Any, endpoint: str) -> dict[str, Any]:
    """Poll DescribeEndpoint until the endpoint leaves Creating/Updating; raise
    UnexpectedStatusException (CapacityError for a capacity reason) unless it is InService."""
    last_dot = time.monotonic()
    while True:
        described = dict(sagemaker_client.describe_endpoint(EndpointName=endpoint))
        status = described["EndpointStatus"]
        if status not in IN_PROGRESS:
            break
        if time.monotonic() - last_dot >= DOT_SECONDS:
            print("-", end="", flush=True)
            last_dot = time.monotonic()
        time.sleep(POLL_SECONDS)
    print(_SYMBOLS.get(status, "?"), end="", flush=True)
    if status != "InService":
        reason = described.get("FailureReason")
        message = (
            f"Error hosting endpoint {endpoint}: {status}. Reason: {reason}. Its log is in the "
            f"log group /aws/sagemaker/Endpoints/{endpoint}."
        )
        error = CapacityError if "CapacityError" in str(reason) else UnexpectedStatusException
        raise error(message, allowed_statuses=["InService"], actual_status=status)
    return described
