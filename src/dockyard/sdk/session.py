"""`Session`: what the SDK's estimators share — the dockyard server's clients, the object store
and the default bucket.

The server speaks the SageMaker and CloudWatch Logs APIs but has no S3 API yet, so data goes to
the object store directly (`store_from_settings`: the local folder under DOCKYARD_HOME, or the
S3 store DOCKYARD_STORE=s3 names). Against a server elsewhere (DOCKYARD_ENDPOINT_URL), the
store settings here must name the store that server uses.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Any

import boto3

from dockyard.client import Client
from dockyard.sdk import _jobs
from dockyard.sdk._compat import deprecated_alias
from dockyard.sdk.inputs import ShuffleConfig as _ShuffleConfig
from dockyard.sdk.inputs import s3_input
from dockyard.settings import Settings
from dockyard.storage.objects import ObjectStore
from dockyard.storage.stores import store_from_settings

__all__ = ["Session", "ShuffleConfig", "get_execution_role", "s3_input"]

DEFAULT_ROLE = "arn:aws:iam::000000000000:role/dockyard"


class Session:
    """The SDK's Session, bound to dockyard. `boto_session` (the region comes from
    DOCKYARD_REGION), `sagemaker_runtime_client`, `settings` (the SDK's SessionSettings),
    `sagemaker_config` and the other AWS-only arguments are accepted and ignored. A
    `sagemaker_client` names the server when DOCKYARD_ENDPOINT_URL does not; `dockyard_settings`
    replaces the DOCKYARD_* environment."""

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

    @cached_property
    def store(self) -> ObjectStore:
        return store_from_settings(self.dockyard_settings)

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
        return self.dockyard_settings.endpoint_url is None

    def account_id(self) -> str:
        return self.dockyard_settings.account_id

    # -- object store --------------------------------------------------------------------------

    def default_bucket(self) -> str:
        """`sagemaker-<region>-<account>` (or the bucket given to the constructor), created in
        the object store if missing."""
        name = self._default_bucket_name or f"sagemaker-{self.boto_region_name}-{self.account_id()}"
        if not self._default_bucket_ready:
            self.store.create_bucket(name)
            self._default_bucket_ready = True
        self._default_bucket_name = name
        return name

    def default_output_path(self) -> str:
        """Where estimators without an output_path write: `s3://<default bucket>/[<prefix>/]`."""
        parts = [self.default_bucket(), self.default_bucket_prefix]
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
        else:
            self.store.create_bucket(bucket)
        prefix = key_prefix.strip("/")
        if source.is_dir():
            for file in sorted(p for p in source.rglob("*") if p.is_file()):
                self.store.put_file(
                    bucket, _join(prefix, file.relative_to(source).as_posix()), file
                )
            return f"s3://{bucket}/{prefix}"
        self.store.put_file(bucket, _join(prefix, source.name), source)
        return f"s3://{bucket}/{_join(prefix, source.name)}"

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


def get_execution_role(sagemaker_session: Session | None = None, use_default: bool = False) -> str:
    """dockyard has no IAM: every job may run with this fixed role ARN."""
    return DEFAULT_ROLE


def _join(*parts: str) -> str:
    return "/".join(part.strip("/") for part in parts if part.strip("/"))


ShuffleConfig = deprecated_alias(
    _ShuffleConfig, "sagemaker.session.ShuffleConfig", "sagemaker.inputs.ShuffleConfig"
)
