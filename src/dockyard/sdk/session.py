"""`Session`: what the SDK's estimators, models, predictors and transformers share — the dockyard
server's clients, the object store and the default bucket — and the Session methods notebooks call
for endpoints and transform jobs.

Data and code go to the object store through the server's S3 API, signed with the session's
keys: against a server elsewhere (DOCKYARD_ENDPOINT_URL) nothing is shared but its URL and keys.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from dockyard.client import Client
from dockyard.client.local_data import upload_path
from dockyard.client.objects import ApiObjects
from dockyard.sdk import _hosting, _jobs, _transform_jobs
from dockyard.sdk._compat import deprecated_alias
from dockyard.sdk._hosting import container_def, production_variant
from dockyard.sdk.exceptions import UnexpectedStatusException
from dockyard.sdk.inputs import ShuffleConfig as _ShuffleConfig
from dockyard.sdk.inputs import s3_input
from dockyard.settings import Settings

__all__ = [
    "Session",
    "ShuffleConfig",
    "container_def",
    "get_execution_role",
    "production_variant",
    "s3_input",
]

DEFAULT_ROLE = "arn:aws:iam::000000000000:role/dockyard"


class Session:
    """The SDK's Session, bound to dockyard. `boto_session` (the region comes from
    DOCKYARD_REGION), `settings` (the SDK's SessionSettings), `sagemaker_config` and the other
    AWS-only arguments are accepted and ignored. A `sagemaker_client` names the server when
    DOCKYARD_ENDPOINT_URL does not; a `sagemaker_runtime_client` is used for InvokeEndpoint;
    `dockyard_settings` replaces the DOCKYARD_* environment."""

    def __init__(
        self,
        boto_session: Any = None,
        sagemaker_client: Any = None,
        sagemaker_runtime_client: Any = None,
        sagemaker_featurestore_runtime_client: Any = None,
        default_bucket: str | None = None,
        settings: Any = None,
        sagemaker_metrics_client: Any = None,
        sagemaker_config: dict[str, Any] | None = None,
        default_bucket_prefix: str | None = None,
        *,
        dockyard_settings: Settings | None = None,
    ) -> None:
        settings = dockyard_settings or Settings()
        if sagemaker_client is not None and settings.endpoint_url is None:
            # Logs and everything else must come from the server this client talks to.
            endpoint = sagemaker_client.meta.endpoint_url
            settings = settings.model_copy(update={"endpoint_url": endpoint})
        self.dockyard_settings = settings
        self.client = Client(settings)
        self._boto_session = boto_session
        self._sagemaker_client = sagemaker_client
        self._sagemaker_runtime_client = sagemaker_runtime_client
        self._default_bucket_name = default_bucket
        self._default_bucket_ready = False
        self.default_bucket_prefix = (default_bucket_prefix or "").strip("/") or None
        self.config = sagemaker_config
        self.local_mode = False

    # -- clients -------------------------------------------------------------------------------

    @property
    def sagemaker_client(self) -> Any:
        """boto3's SageMaker client, pointed at the dockyard server (a local one is started in
        the background on first use when DOCKYARD_ENDPOINT_URL is not set)."""
        if self._sagemaker_client is None:
            self._sagemaker_client = self.client.sagemaker
        return self._sagemaker_client

    @property
    def sagemaker_runtime_client(self) -> Any:
        """boto3's SageMaker runtime client (InvokeEndpoint), pointed at the same server."""
        if self._sagemaker_runtime_client is None:
            self._sagemaker_runtime_client = self.client.runtime
        return self._sagemaker_runtime_client

    @cached_property
    def store(self) -> ApiObjects:
        """The object store, through the server's S3 API with this session's keys."""
        return self.client.objects

    @cached_property
    def boto_session(self) -> Any:
        return self._boto_session or boto3.Session(region_name=self.boto_region_name)

    @property
    def boto_region_name(self) -> str:
        return self.dockyard_settings.region

    @property
    def server_reads_local_files(self) -> bool:
        """True when the server runs here (no DOCKYARD_ENDPOINT_URL): it then reads local data
        and code in place; otherwise they are uploaded to the object store first."""
        return self.client.server_reads_local_files

    def account_id(self) -> str:
        return self.dockyard_settings.account_id

    def expand_role(self, role: str | None) -> str:
        """A role name as an ARN of this account; no IAM is asked (dockyard has none), and no
        role at all is the fixed dockyard role."""
        if not role:
            return DEFAULT_ROLE
        if "/" in role:
            return role
        return f"arn:aws:iam::{self.account_id()}:role/{role}"

    # -- object store --------------------------------------------------------------------------

    def default_bucket(self) -> str:
        """`sagemaker-<region>-<account>` (or the bucket given to the constructor), created in
        the object store (through the S3 API) if missing."""
        name = self.default_bucket_name()
        if not self._default_bucket_ready:
            self.store.create_bucket(name)
            self._default_bucket_ready = True
        return name

    def default_bucket_name(self) -> str:
        """The default bucket's name, without asking the server: where a job's outputs go, the
        server makes the bucket itself when it writes them."""
        if self._default_bucket_name is None:
            self._default_bucket_name = f"sagemaker-{self.boto_region_name}-{self.account_id()}"
        return self._default_bucket_name

    def default_output_path(self) -> str:
        """Where estimators without an output_path write: `s3://<default bucket>/[<prefix>/]`."""
        parts = [self.default_bucket_name(), self.default_bucket_prefix]
        return "s3://" + "/".join(part for part in parts if part) + "/"

    def upload_data(
        self,
        path: str | os.PathLike[str],
        bucket: str | None = None,
        key_prefix: str = "data",
        callback: Any = None,
        extra_args: Any = None,
    ) -> str:
        """Upload a file, or a folder with everything under it (relative paths kept), and return
        `s3://<bucket>/<key_prefix>` for a folder or `s3://<bucket>/<key_prefix>/<file name>`
        for a file. The bucket defaults to default_bucket() (under default_bucket_prefix) and is
        created if missing. `callback` and `extra_args` (boto3 transfer options) are ignored."""
        source = Path(path).expanduser()
        if not source.exists():
            raise FileNotFoundError(f"cannot upload {source}: no such file or folder")
        if bucket is None:
            bucket = self.default_bucket()
            key_prefix = _join(self.default_bucket_prefix or "", key_prefix)
        return upload_path(self.store, source, bucket, key_prefix)

    def download_data(
        self,
        path: str | os.PathLike[str],
        bucket: str,
        key_prefix: str = "",
        extra_args: Any = None,
    ) -> list[str]:
        """Download every object under `key_prefix` into the folder `path`; returns the files."""
        files = self.store.get_prefix(bucket, key_prefix, Path(path).expanduser())
        return [str(file) for file in files]

    # -- training jobs -------------------------------------------------------------------------

    def describe_training_job(self, job_name: str) -> dict[str, Any]:
        return dict(self.sagemaker_client.describe_training_job(TrainingJobName=job_name))

    def stop_training_job(self, job_name: str) -> None:
        self.sagemaker_client.stop_training_job(TrainingJobName=job_name)

    def wait_for_job(self, job: str, poll: float = 5) -> dict[str, Any]:
        """Wait for the job to end, printing its status changes; raise if it did not complete."""
        return _jobs.follow_job(self, job, wait=True, log_type="None")

    def logs_for_job(
        self,
        job_name: str,
        wait: bool = False,
        poll: float = 10,
        log_type: str | bool = "All",
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Print the job's status changes and log lines; with wait=True follow it until it ends
        and raise UnexpectedStatusException if it failed. dockyard polls every 0.3 s whatever
        `poll` says: the server is near and cheap to ask."""
        return _jobs.follow_job(self, job_name, wait=wait, log_type=log_type, timeout=timeout)

    # -- models and endpoints ------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        role: str | None = None,
        container_defs: dict[str, Any] | list[dict[str, Any]] | None = None,
        vpc_config: dict[str, Any] | None = None,
        enable_network_isolation: bool | None = None,
        primary_container: dict[str, Any] | None = None,
        tags: list[dict[str, str]] | None = None,
    ) -> str:
        """CreateModel with one container (a list of one is accepted; inference pipelines are
        not supported). `vpc_config` is ignored: dockyard has no VPCs."""
        container = container_defs or primary_container
        if isinstance(container, list):
            if len(container) != 1:
                raise ValueError("inference pipelines (several containers) are not supported")
            container = container[0]
        if not container:
            raise ValueError("create_model needs container_defs: the model's container")
        request: dict[str, Any] = {
            "ModelName": name,
            "ExecutionRoleArn": self.expand_role(role),
            "PrimaryContainer": container,
        }
        if enable_network_isolation:
            request["EnableNetworkIsolation"] = True
        if tags:
            request["Tags"] = tags
        self.sagemaker_client.create_model(**request)
        return name

    def delete_model(self, model_name: str) -> None:
        self.sagemaker_client.delete_model(ModelName=model_name)

    def create_endpoint_config(
        self,
        name: str,
        model_name: str,
        initial_instance_count: int,
        instance_type: str,
        accelerator_type: str | None = None,
        data_capture_config_dict: dict[str, Any] | None = None,
        tags: list[dict[str, str]] | None = None,
        kms_key: str | None = None,
        volume_size: int | None = None,
        model_data_download_timeout: int | None = None,
        container_startup_health_check_timeout: int | None = None,
        **_aws_only: Any,
    ) -> str:
        """CreateEndpointConfig with one variant, AllTraffic, of `model_name`. Data capture and
        KMS keys are ignored."""
        variant = production_variant(
            model_name,
            instance_type,
            initial_instance_count,
            accelerator_type=accelerator_type,
            volume_size=volume_size,
            model_data_download_timeout=model_data_download_timeout,
            container_startup_health_check_timeout=container_startup_health_check_timeout,
        )
        request: dict[str, Any] = {"EndpointConfigName": name, "ProductionVariants": [variant]}
        if tags:
            request["Tags"] = tags
        self.sagemaker_client.create_endpoint_config(**request)
        return name

    def create_endpoint(
        self,
        endpoint_name: str,
        config_name: str,
        tags: list[dict[str, str]] | None = None,
        wait: bool = True,
        live_logging: bool = False,
    ) -> str:
        """CreateEndpoint and, with `wait`, wait until it is InService (UnexpectedStatusException
        with the FailureReason if it fails)."""
        request: dict[str, Any] = {"EndpointName": endpoint_name, "EndpointConfigName": config_name}
        if tags:
            request["Tags"] = tags
        self.sagemaker_client.create_endpoint(**request)
        if wait:
            self.wait_for_endpoint(endpoint_name)
        return endpoint_name

    def endpoint_from_production_variants(
        self,
        name: str,
        production_variants: list[dict[str, Any]],
        tags: list[dict[str, str]] | None = None,
        kms_key: str | None = None,
        wait: bool = True,
        **_aws_only: Any,
    ) -> str:
        """An endpoint config and an endpoint, both called `name`, as the SDK's deploy makes
        them."""
        request: dict[str, Any] = {
            "EndpointConfigName": name,
            "ProductionVariants": production_variants,
        }
        if tags:
            request["Tags"] = tags
        self.sagemaker_client.create_endpoint_config(**request)
        return self.create_endpoint(name, name, tags=tags, wait=wait)

    def update_endpoint(
        self, endpoint_name: str, endpoint_config_name: str, wait: bool = True
    ) -> str:
        """UpdateEndpoint to another config (blue/green). With `wait`, an update the server
        rolled back raises UnexpectedStatusException with its FailureReason."""
        try:
            self.sagemaker_client.describe_endpoint(EndpointName=endpoint_name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ValidationException":
                raise
            raise ValueError(
                f"Endpoint with name '{endpoint_name}' does not exist; please use an existing "
                "endpoint name"
            ) from exc
        self.sagemaker_client.update_endpoint(
            EndpointName=endpoint_name, EndpointConfigName=endpoint_config_name
        )
        if wait:
            described = self.wait_for_endpoint(endpoint_name)
            if described.get("EndpointConfigName") != endpoint_config_name:
                # Rolled back: InService again, on the old config.
                raise UnexpectedStatusException(
                    f"Error updating endpoint {endpoint_name} to {endpoint_config_name}: rolled "
                    f"back. Reason: {described.get('FailureReason')}",
                    allowed_statuses=["InService"],
                    actual_status="RollingBack",
                )
        return endpoint_name

    def wait_for_endpoint(
        self, endpoint: str, poll: float = 30, live_logging: bool = False
    ) -> dict[str, Any]:
        """Wait until the endpoint is out of Creating/Updating, printing a `-` per second and
        `!` once InService; raise UnexpectedStatusException if it is not InService. dockyard
        polls every 0.3 s whatever `poll` says."""
        return _hosting.wait_for_endpoint(self.sagemaker_client, endpoint)

    def describe_endpoint(self, endpoint_name: str) -> dict[str, Any]:
        return dict(self.sagemaker_client.describe_endpoint(EndpointName=endpoint_name))

    def describe_endpoint_config(self, endpoint_config_name: str) -> dict[str, Any]:
        return dict(
            self.sagemaker_client.describe_endpoint_config(EndpointConfigName=endpoint_config_name)
        )

    def delete_endpoint(self, endpoint_name: str) -> None:
        """DeleteEndpoint: its instances stop in the background."""
        self.sagemaker_client.delete_endpoint(EndpointName=endpoint_name)

    def delete_endpoint_config(self, endpoint_config_name: str) -> None:
        self.sagemaker_client.delete_endpoint_config(EndpointConfigName=endpoint_config_name)

    # -- transform jobs ------------------------------------------------------------------------

    def describe_transform_job(self, job_name: str) -> dict[str, Any]:
        return dict(self.sagemaker_client.describe_transform_job(TransformJobName=job_name))

    def stop_transform_job(self, name: str) -> None:
        self.sagemaker_client.stop_transform_job(TransformJobName=name)

    def wait_for_transform_job(self, job: str, poll: float = 5) -> dict[str, Any]:
        """Wait for the job to end, printing a dot per second; raise if it failed."""
        return _transform_jobs.follow_transform_job(self, job, wait=True, logs=False)

    def logs_for_transform_job(
        self, job_name: str, wait: bool = False, poll: float = 10
    ) -> dict[str, Any]:
        """Print the job's log lines; with wait=True follow it until it ends and raise
        UnexpectedStatusException if it failed."""
        return _transform_jobs.follow_transform_job(self, job_name, wait=wait, logs=True)


def get_execution_role(sagemaker_session: Session | None = None, use_default: bool = False) -> str:
    """dockyard has no IAM: every job may run with this fixed role ARN."""
    return DEFAULT_ROLE


def _join(*parts: str) -> str:
    return "/".join(part.strip("/") for part in parts if part.strip("/"))


ShuffleConfig = deprecated_alias(
    _ShuffleConfig, "sagemaker.session.ShuffleConfig", "sagemaker.inputs.ShuffleConfig"
)
