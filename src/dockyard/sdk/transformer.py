"""`Transformer`: batch transform jobs of a model, as the SDK's — `transform()` starts one (and by
default follows its log until it ends), `wait()`, `stop_transform_job()`, `attach()`."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from dockyard.client.uris import data_uri
from dockyard.sdk._channels import server_uri
from dockyard.sdk._jobs import Job
from dockyard.sdk._names import base_name_from_image, name_from_base
from dockyard.sdk._transform_jobs import follow_transform_job
from dockyard.sdk.session import Session

__all__ = ["TransformJob", "Transformer"]


class TransformJob(Job[Session]):
    """The job a transformer started (`transformer.latest_transform_job`)."""

    def describe(self) -> dict[str, Any]:
        return self.sagemaker_session.describe_transform_job(self.job_name)

    def wait(self, logs: bool = True) -> dict[str, Any]:
        """Follow the job until it ends (printing its log with `logs`); raise
        UnexpectedStatusException if it failed."""
        return follow_transform_job(self.sagemaker_session, self.job_name, wait=True, logs=logs)

    def stop(self) -> None:
        self.sagemaker_session.stop_transform_job(name=self.job_name)


class Transformer:
    """Batch transform with the model `model_name`. `output_path` defaults to
    `s3://<default bucket>/[<prefix>/]<job name>`; KMS keys are accepted and not sent."""

    JOB_CLASS_NAME = "transform-job"

    def __init__(
        self,
        model_name: str,
        instance_count: int,
        instance_type: str,
        strategy: str | None = None,
        assemble_with: str | None = None,
        output_path: str | None = None,
        output_kms_key: str | None = None,
        accept: str | None = None,
        max_concurrent_transforms: int | None = None,
        max_payload: int | None = None,
        tags: list[dict[str, str]] | None = None,
        env: dict[str, str] | None = None,
        base_transform_job_name: str | None = None,
        sagemaker_session: Session | None = None,
        volume_kms_key: str | None = None,
    ) -> None:
        self.model_name = model_name
        self.instance_count = instance_count
        self.instance_type = instance_type
        self.strategy = strategy
        self.assemble_with = assemble_with
        self.output_path = output_path
        self.output_kms_key = output_kms_key
        self.accept = accept
        self.max_concurrent_transforms = max_concurrent_transforms
        self.max_payload = max_payload
        self.tags = list(tags) if tags else None
        self.env = env
        self.base_transform_job_name = base_transform_job_name
        self.sagemaker_session = sagemaker_session or Session()
        self.volume_kms_key = volume_kms_key
        self.latest_transform_job: TransformJob | None = None
        self._current_job_name: str | None = None
        self._reset_output_path = False  # the default output path is made per job

    def transform(
        self,
        data: str,
        data_type: str = "S3Prefix",
        content_type: str | None = None,
        compression_type: str | None = None,
        split_type: str | None = None,
        job_name: str | None = None,
        input_filter: str | None = None,
        output_filter: str | None = None,
        join_source: str | None = None,
        experiment_config: dict[str, str] | None = None,
        model_client_config: dict[str, Any] | None = None,
        batch_data_capture_config: Any = None,
        wait: bool = True,
        logs: bool = True,
    ) -> None:
        """Start a transform job on `data` (an s3:// prefix or object, or — unlike on SageMaker
        — a local path or file:// URI, read in place by a server on this machine and uploaded
        for one elsewhere) and, with `wait`, follow it until it ends. SageMaker Experiments'
        `experiment_config` is ignored."""
        request = self.transform_request(
            data,
            data_type,
            content_type,
            compression_type,
            split_type,
            job_name,
            input_filter,
            output_filter,
            join_source,
            model_client_config,
            batch_data_capture_config,
        )
        self.sagemaker_session.sagemaker_client.create_transform_job(**request)
        self.latest_transform_job = TransformJob(
            self.sagemaker_session, request["TransformJobName"]
        )
        if wait:
            self.latest_transform_job.wait(logs=logs)

    def transform_request(
        self,
        data: str,
        data_type: str = "S3Prefix",
        content_type: str | None = None,
        compression_type: str | None = None,
        split_type: str | None = None,
        job_name: str | None = None,
        input_filter: str | None = None,
        output_filter: str | None = None,
        join_source: str | None = None,
        model_client_config: dict[str, Any] | None = None,
        batch_data_capture_config: Any = None,
    ) -> dict[str, Any]:
        """The CreateTransformJob request `transform()` sends (local data is made readable by
        the server on the way), shaped as the SDK's."""
        if batch_data_capture_config is not None:
            raise ValueError(
                "batch_data_capture_config (data capture) is not supported by dockyard"
            )
        name = job_name or name_from_base(
            self.base_transform_job_name or self._retrieve_base_name()
        )
        self._current_job_name = name
        session = self.sagemaker_session
        if self.output_path is None or self._reset_output_path:
            parts = [session.default_bucket_name(), session.default_bucket_prefix, name]
            self.output_path = "s3://" + "/".join(part for part in parts if part)
            self._reset_output_path = True
        # Local data for a server elsewhere goes under data/ (as upload_data's default), not
        # under the job's name: the default output path is that, and would list the input too.
        source = {"S3DataType": data_type, "S3Uri": server_uri(session, data, f"data/{name}")}
        transform_input: dict[str, Any] = {"DataSource": {"S3DataSource": source}}
        _update(
            transform_input,
            ContentType=content_type,
            CompressionType=compression_type,
            SplitType=split_type,
        )
        output: dict[str, Any] = {"S3OutputPath": _output_uri(session, self.output_path)}
        _update(output, AssembleWith=self.assemble_with, Accept=self.accept)
        resources = {"InstanceCount": self.instance_count, "InstanceType": self.instance_type}
        request: dict[str, Any] = {
            "TransformJobName": name,
            "ModelName": self.model_name,
            "TransformInput": transform_input,
            "TransformOutput": output,
            "TransformResources": resources,
        }
        data_processing: dict[str, Any] = {}
        _update(
            data_processing,
            InputFilter=input_filter,
            OutputFilter=output_filter,
            JoinSource=join_source,
        )
        _update(
            request,
            BatchStrategy=self.strategy,
            MaxConcurrentTransforms=self.max_concurrent_transforms,
            MaxPayloadInMB=self.max_payload,
            Environment=self.env,
            Tags=self.tags,
            DataProcessing=data_processing or None,
            ModelClientConfig=model_client_config or None,
        )
        return request

    def wait(self, logs: bool = True) -> None:
        self._job().wait(logs=logs)

    def stop_transform_job(self, wait: bool = True) -> None:
        """Stop the latest job and, with `wait`, wait until it has stopped."""
        job = self._job()
        job.stop()
        if wait:
            job.wait()

    def delete_model(self) -> None:
        self.sagemaker_session.delete_model(self.model_name)

    def _job(self) -> TransformJob:
        if self.latest_transform_job is None:
            raise ValueError("No transform job available")
        return self.latest_transform_job

    def _retrieve_base_name(self) -> str:
        """The model's image repository (`python` for dockyard/python:3.11), as the SDK names
        jobs."""
        try:
            described = self.sagemaker_session.sagemaker_client.describe_model(
                ModelName=self.model_name
            )
        except ClientError as exc:
            raise ValueError(
                f"Failed to fetch model information for {self.model_name}. Please ensure that "
                "the model exists."
            ) from exc
        container = described.get("PrimaryContainer") or (described.get("Containers") or [{}])[0]
        image = container.get("Image")
        return base_name_from_image(image, self.JOB_CLASS_NAME) if image else self.model_name

    @classmethod
    def attach(cls, transform_job_name: str, sagemaker_session: Session | None = None) -> Any:
        """A transformer rebuilt from DescribeTransformJob, bound to that job."""
        session = sagemaker_session or Session()
        described = session.describe_transform_job(transform_job_name)
        resources = described["TransformResources"]
        output = described["TransformOutput"]
        transformer = cls(
            model_name=described["ModelName"],
            instance_count=resources["InstanceCount"],
            instance_type=resources["InstanceType"],
            strategy=described.get("BatchStrategy"),
            assemble_with=output.get("AssembleWith"),
            output_path=output["S3OutputPath"],
            accept=output.get("Accept"),
            max_concurrent_transforms=described.get("MaxConcurrentTransforms"),
            max_payload=described.get("MaxPayloadInMB"),
            env=described.get("Environment"),
            base_transform_job_name=transform_job_name,
            sagemaker_session=session,
        )
        transformer._current_job_name = transform_job_name
        transformer.latest_transform_job = TransformJob(session, transform_job_name)
        return transformer


def _update(target: dict[str, Any], **values: Any) -> None:
    """Set only the members that have a value, as the SDK leaves the others out."""
    target.update({key: value for key, value in values.items() if value is not None})


def _output_uri(session: Session, path: str) -> str:
    """s3:// as is; a local folder as an absolute file:// URI for a server on this machine (it
    decides whether it may write there). A server elsewhere cannot write the caller's folder."""
    if path.startswith("s3://"):
        return path
    if not session.server_reads_local_files:
        raise ValueError(
            f"output_path {path} is a local folder, which the server at "
            f"{session.client.endpoint_url} cannot write: give an s3:// output_path and fetch "
            "the output with Session().download_data() when the job ends"
        )
    return data_uri(path)
