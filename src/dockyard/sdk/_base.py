"""`EstimatorBase`: what every estimator shares — resources, output, script-mode code, the
CreateTrainingJob request, fit, attach and logs, and deploy / transformer of the trained model.
Subclasses say which image runs, how hyperparameters are encoded and which Model serves the
result (estimator.py)."""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping
from typing import Any

from dockyard.sdk._channels import Inputs, input_data_config, job_input_mode
from dockyard.sdk._code import StagedCode, stage_code
from dockyard.sdk._jobs import TrainingJob
from dockyard.sdk._names import base_from_name, base_name_from_image, name_from_base
from dockyard.sdk.deserializers import BaseDeserializer
from dockyard.sdk.serializers import BaseSerializer
from dockyard.sdk.session import DEFAULT_ROLE, Session
from dockyard.sdk.transformer import Transformer

IGNORED_ARGUMENTS = frozenset(
    {
        "subnets",
        "security_group_ids",
        "volume_kms_key",
        "output_kms_key",
        "rules",
        "debugger_hook_config",
        "tensorboard_output_config",
        "profiler_config",
        "disable_profiler",
        "enable_sagemaker_metrics",
        "training_repository_access_mode",
        "training_repository_credentials_provider_arn",
        "enable_infra_check",
        "enable_remote_debug",
        "enable_session_tag_chaining",
        "training_plan",
        "instance_placement_config",
    }
)
SCRIPT_MODE_HYPERPARAMETERS = (
    "sagemaker_submit_directory",
    "sagemaker_program",
    "sagemaker_container_log_level",
    "sagemaker_job_name",
    "sagemaker_region",
)


class EstimatorBase:
    """What every estimator shares. instance_count and instance_type default to 1 and `local`
    (the whole machine); `role` may be any ARN or role name, or omitted (dockyard has no IAM)."""

    def __init__(
        self,
        role: str | None = None,
        instance_count: int | None = None,
        instance_type: str | None = None,
        *,
        keep_alive_period_in_seconds: int | None = None,
        volume_size: int = 30,
        max_run: int = 86400,
        input_mode: str = "File",
        output_path: str | None = None,
        base_job_name: str | None = None,
        sagemaker_session: Session | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        tags: list[dict[str, str]] | dict[str, str] | None = None,
        model_uri: str | None = None,
        model_channel_name: str = "model",
        metric_definitions: list[dict[str, str]] | None = None,
        encrypt_inter_container_traffic: bool | None = None,
        use_spot_instances: bool = False,
        max_wait: int | None = None,
        checkpoint_s3_uri: str | None = None,
        checkpoint_local_path: str | None = None,
        enable_network_isolation: bool | None = None,
        environment: Mapping[str, str] | None = None,
        max_retry_attempts: int | None = None,
        source_dir: str | None = None,
        git_config: dict[str, str] | None = None,
        container_log_level: int = 20,
        code_location: str | None = None,
        entry_point: str | None = None,
        dependencies: list[str] | None = None,
        instance_groups: list[Any] | None = None,
        container_entry_point: list[str] | None = None,
        container_arguments: list[str] | None = None,
        disable_output_compression: bool = False,
        **kwargs: Any,
    ) -> None:
        unknown = sorted(set(kwargs) - IGNORED_ARGUMENTS)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}() got an unexpected keyword argument {unknown[0]!r}"
            )
        if git_config:
            raise ValueError(
                "git_config is not supported by dockyard: clone the repository and pass its "
                "folder as source_dir"
            )
        if instance_groups:
            raise ValueError("instance_groups (heterogeneous clusters) are not supported yet")
        if source_dir is not None and entry_point is None:
            raise ValueError("source_dir needs an entry_point: the script to run in it")
        self.sagemaker_session = sagemaker_session or Session()
        self.role = _role_arn(role, self.sagemaker_session.account_id())
        self.instance_count = 1 if instance_count is None else instance_count
        self.instance_type = instance_type or "local"
        self.keep_alive_period_in_seconds = keep_alive_period_in_seconds
        self.volume_size = volume_size
        self.max_run = max_run
        self.input_mode = input_mode
        self.output_path = output_path
        self.base_job_name = base_job_name
        self._hyperparameters: dict[str, Any] = dict(hyperparameters or {})
        self.tags = _tag_list(tags)
        self.model_uri = model_uri
        self.model_channel_name = model_channel_name
        self.metric_definitions = list(metric_definitions or [])
        self.encrypt_inter_container_traffic = encrypt_inter_container_traffic
        self.use_spot_instances = use_spot_instances
        self.max_wait = max_wait
        self.checkpoint_s3_uri = checkpoint_s3_uri
        self.checkpoint_local_path = checkpoint_local_path
        self._enable_network_isolation = bool(enable_network_isolation)
        self.environment = dict(environment or {})
        self.max_retry_attempts = max_retry_attempts
        self.source_dir = source_dir
        self.container_log_level = container_log_level
        self.code_location = code_location
        self.entry_point = entry_point
        self.dependencies = list(dependencies or [])
        self.container_entry_point = container_entry_point
        self.container_arguments = container_arguments
        self.disable_output_compression = disable_output_compression
        self.latest_training_job: TrainingJob | None = None
        self._current_job_name: str | None = None
        # The code the latest request staged: what create_model() serves by default.
        self.uploaded_code: StagedCode | None = None

    # -- what subclasses decide ----------------------------------------------------------------

    def training_image_uri(self) -> str:
        raise NotImplementedError

    def hyperparameters(self) -> dict[str, Any]:
        raise NotImplementedError

    def set_hyperparameters(self, **kwargs: Any) -> None:
        self._hyperparameters.update(kwargs)

    def enable_network_isolation(self) -> bool:
        return self._enable_network_isolation

    # -- the request ---------------------------------------------------------------------------

    def training_request(
        self,
        inputs: Inputs = None,
        job_name: str | None = None,
        experiment_config: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The CreateTrainingJob request `fit()` sends. Building it also puts local data and
        code where the server can read them: nothing to do for a server on this machine (it
        reads them in place) unless `dependencies` are given; uploads to the object store for a
        server elsewhere. `experiment_config` (SageMaker Experiments) is ignored."""
        session = self.sagemaker_session
        name = job_name or name_from_base(self._base_name())
        output_path = self.output_path or session.default_output_path()
        algorithm: dict[str, Any] = {
            "TrainingImage": self.training_image_uri(),
            "TrainingInputMode": job_input_mode(inputs, self.input_mode),
        }
        if self.metric_definitions:
            algorithm["MetricDefinitions"] = self.metric_definitions
        if self.container_entry_point:
            algorithm["ContainerEntrypoint"] = self.container_entry_point
        if self.container_arguments:
            algorithm["ContainerArguments"] = self.container_arguments
        output: dict[str, Any] = {"S3OutputPath": output_path}
        if self.disable_output_compression:
            output["CompressionType"] = "NONE"
        resources: dict[str, Any] = {
            "InstanceCount": self.instance_count,
            "InstanceType": self.instance_type,
            "VolumeSizeInGB": self.volume_size,
        }
        if self.keep_alive_period_in_seconds is not None:
            resources["KeepAlivePeriodInSeconds"] = self.keep_alive_period_in_seconds
        stopping: dict[str, Any] = {"MaxRuntimeInSeconds": self.max_run}
        if self.max_wait is not None:
            stopping["MaxWaitTimeInSeconds"] = self.max_wait
        request: dict[str, Any] = {
            "TrainingJobName": name,
            "RoleArn": self.role,
            "AlgorithmSpecification": algorithm,
            "OutputDataConfig": output,
            "ResourceConfig": resources,
            "StoppingCondition": stopping,
        }
        if isinstance(inputs, Mapping) and self.model_uri and self.model_channel_name in inputs:
            raise ValueError(
                f"inputs already have a channel named {self.model_channel_name}, the channel of "
                "model_uri; choose another model_channel_name"
            )
        channels = input_data_config(
            session,
            inputs,
            job_name=name,
            model_uri=self.model_uri,
            model_channel_name=self.model_channel_name,
        )
        if channels:
            request["InputDataConfig"] = channels
        hyperparameters = self._wire_hyperparameters(name, output_path)
        if hyperparameters:
            request["HyperParameters"] = hyperparameters
        optional: dict[str, Any] = {
            "Environment": self.environment or None,
            "Tags": self.tags or None,
            "EnableNetworkIsolation": self._enable_network_isolation or None,
            "EnableInterContainerTrafficEncryption": self.encrypt_inter_container_traffic or None,
            "EnableManagedSpotTraining": self.use_spot_instances or None,
        }
        if self.checkpoint_s3_uri:
            optional["CheckpointConfig"] = {"S3Uri": self.checkpoint_s3_uri}
            if self.checkpoint_local_path:
                optional["CheckpointConfig"]["LocalPath"] = self.checkpoint_local_path
        if self.max_retry_attempts:
            optional["RetryStrategy"] = {"MaximumRetryAttempts": self.max_retry_attempts}
        request.update({key: value for key, value in optional.items() if value is not None})
        return request

    def _wire_hyperparameters(self, job_name: str, output_path: str) -> dict[str, str]:
        """hyperparameters() as strings, plus the JSON-encoded script-mode ones when there is
        code to stage."""
        values = {str(key): str(value) for key, value in self.hyperparameters().items()}
        if self.entry_point is None:
            return values
        code = stage_code(
            self.sagemaker_session,
            entry_point=self.entry_point,
            source_dir=self.source_dir,
            dependencies=self.dependencies,
            job_name=job_name,
            code_location=self.code_location,
            output_path=output_path,
        )
        self.uploaded_code = code
        script_mode = [
            code.submit_directory,
            code.program,
            self.container_log_level,
            job_name,
            self.sagemaker_session.boto_region_name,
        ]
        values.update(
            (key, json.dumps(value))
            for key, value in zip(SCRIPT_MODE_HYPERPARAMETERS, script_mode, strict=True)
        )
        return values

    def _base_name(self) -> str:
        if self.base_job_name:
            return self.base_job_name
        return base_name_from_image(self.training_image_uri(), "training-job")

    # -- running -------------------------------------------------------------------------------

    def fit(
        self,
        inputs: Inputs = None,
        wait: bool = True,
        logs: str | bool = "All",
        job_name: str | None = None,
        experiment_config: dict[str, str] | None = None,
    ) -> None:
        """Start a training job on `inputs` (a URI or TrainingInput for the `training` channel,
        or a dict of channel name to either) and, with `wait`, follow it until it ends, printing
        its status changes and (with `logs`) its log; a Failed job raises
        UnexpectedStatusException. Local paths and file:// URIs are read in place by a server on
        this machine and uploaded to the object store for one elsewhere."""
        request = self.training_request(inputs, job_name, experiment_config)
        self.sagemaker_session.sagemaker_client.create_training_job(**request)
        self._current_job_name = request["TrainingJobName"]
        self.latest_training_job = TrainingJob(self.sagemaker_session, self._current_job_name)
        if wait:
            self.latest_training_job.wait(logs=logs)

    def _job(self) -> TrainingJob:
        if self.latest_training_job is None:
            raise ValueError(
                "this estimator has no training job yet: call fit() first, or attach() to one"
            )
        return self.latest_training_job

    @property
    def model_data(self) -> str:
        """The S3 URI of the latest job's model.tar.gz."""
        return str(self._job().describe()["ModelArtifacts"]["S3ModelArtifacts"])

    def logs(self) -> None:
        """Print the latest job's status changes and log, following it until it ends."""
        self.sagemaker_session.logs_for_job(self._job().name, wait=True)

    # -- serving the trained model -------------------------------------------------------------

    def create_model(self, **kwargs: Any) -> Any:
        """The Model that serves the latest job's model data (see the subclasses)."""
        raise NotImplementedError

    def _model_source_dir(self) -> str | None:
        """The inference code's folder or archive for create_model(): what the latest fit()
        staged (the SDK uses the sourcedir.tar.gz it uploaded), else source_dir."""
        if self.uploaded_code is not None:
            return self.uploaded_code.submit_directory
        return self.source_dir

    def _model_entry_point(self) -> str | None:
        if self.uploaded_code is not None:
            return self.uploaded_code.program
        return self.entry_point

    def _get_or_create_name(self, name: str | None = None) -> str:
        return name or name_from_base(self._base_name())

    def deploy(
        self,
        initial_instance_count: int | None = None,
        instance_type: str | None = None,
        serializer: BaseSerializer | None = None,
        deserializer: BaseDeserializer | None = None,
        accelerator_type: str | None = None,
        endpoint_name: str | None = None,
        use_compiled_model: bool = False,
        wait: bool = True,
        model_name: str | None = None,
        kms_key: str | None = None,
        data_capture_config: Any = None,
        tags: list[dict[str, str]] | None = None,
        serverless_inference_config: Any = None,
        async_inference_config: Any = None,
        volume_size: int | None = None,
        model_data_download_timeout: int | None = None,
        container_startup_health_check_timeout: int | None = None,
        inference_recommendation_id: str | None = None,
        explainer_config: Any = None,
        **kwargs: Any,
    ) -> Any:
        """Serve the latest job's model: a model, an endpoint config and an endpoint, all named
        `<base job name>-<timestamp>` unless named here, on `initial_instance_count` instances;
        returns a Predictor once the endpoint is InService. Framework estimators serve with
        their entry_point / source_dir as the inference code. `kwargs` go to create_model()."""
        if use_compiled_model:
            raise ValueError("compiled models (SageMaker Neo) are not supported by dockyard")
        if kwargs.pop("update_endpoint", None) is not None:
            _removed_warning("update_endpoint (use predictor.update_endpoint())")
        self._job()
        default_name = name_from_base(self._base_name())
        model = self.create_model(**kwargs)
        model.name = model_name or default_name
        return model.deploy(
            instance_type=instance_type,
            initial_instance_count=initial_instance_count,
            serializer=serializer,
            deserializer=deserializer,
            accelerator_type=accelerator_type,
            endpoint_name=endpoint_name or default_name,
            tags=tags or self.tags or None,
            wait=wait,
            kms_key=kms_key,
            data_capture_config=data_capture_config,
            serverless_inference_config=serverless_inference_config,
            async_inference_config=async_inference_config,
            volume_size=volume_size,
            model_data_download_timeout=model_data_download_timeout,
            container_startup_health_check_timeout=container_startup_health_check_timeout,
            inference_recommendation_id=inference_recommendation_id,
            explainer_config=explainer_config,
        )

    def transformer(
        self,
        instance_count: int,
        instance_type: str,
        strategy: str | None = None,
        assemble_with: str | None = None,
        output_path: str | None = None,
        output_kms_key: str | None = None,
        accept: str | None = None,
        env: dict[str, str] | None = None,
        max_concurrent_transforms: int | None = None,
        max_payload: int | None = None,
        tags: list[dict[str, str]] | None = None,
        role: str | None = None,
        volume_kms_key: str | None = None,
        vpc_config_override: Any = None,
        enable_network_isolation: bool | None = None,
        model_name: str | None = None,
        **create_model_kwargs: Any,
    ) -> Transformer:
        """Create a model of the latest job (named `<base job name>-<timestamp>` unless
        `model_name` is given) and return a Transformer for batch transform jobs with it."""
        self._job()
        tags = tags or self.tags or None
        name = self._get_or_create_name(model_name)
        if enable_network_isolation is None:
            enable_network_isolation = self.enable_network_isolation()
        model = self.create_model(
            role=role, enable_network_isolation=enable_network_isolation, **create_model_kwargs
        )
        model.name = name
        transformer: Transformer = model.transformer(
            instance_count,
            instance_type,
            strategy=strategy,
            assemble_with=assemble_with,
            output_path=output_path,
            output_kms_key=output_kms_key,
            accept=accept,
            max_concurrent_transforms=max_concurrent_transforms,
            max_payload=max_payload,
            tags=tags,
            volume_kms_key=volume_kms_key,
        )
        # As the SDK: unlike a model's, an estimator's transformer keeps `env` for an isolated
        # model (a framework's adds the model's env) and names jobs after the estimator.
        transformer.env = self._transform_env(model, env)
        transformer.base_transform_job_name = self._base_name()
        return transformer

    def _transform_env(self, model: Any, env: dict[str, str] | None) -> dict[str, str] | None:
        return env

    def delete_endpoint(self) -> None:
        """Removed in the SageMaker SDK v2 (a no-op that warns): use predictor.delete_endpoint()."""
        _removed_warning("estimator.delete_endpoint() (use predictor.delete_endpoint())")

    # -- attaching -----------------------------------------------------------------------------

    @classmethod
    def attach(
        cls,
        training_job_name: str,
        sagemaker_session: Session | None = None,
        model_channel_name: str = "model",
    ) -> Any:
        """An estimator rebuilt from DescribeTrainingJob, bound to that job; waits (without
        printing the log — call logs() for it) while the job is still running."""
        session = sagemaker_session or Session()
        described = session.describe_training_job(training_job_name)
        params = cls._init_params_from_description(described, model_channel_name)
        estimator = cls(sagemaker_session=session, **params)
        estimator._current_job_name = training_job_name
        estimator.latest_training_job = TrainingJob(session, training_job_name)
        estimator.latest_training_job.wait(logs="None")
        return estimator

    @classmethod
    def _init_params_from_description(
        cls, described: dict[str, Any], model_channel_name: str
    ) -> dict[str, Any]:
        algorithm = described["AlgorithmSpecification"]
        resources = described["ResourceConfig"]
        stopping = described.get("StoppingCondition", {})
        params: dict[str, Any] = {
            "role": described["RoleArn"],
            "instance_count": resources["InstanceCount"],
            "instance_type": resources["InstanceType"],
            "volume_size": resources.get("VolumeSizeInGB", 30),
            "max_run": stopping.get("MaxRuntimeInSeconds", 86400),
            "max_wait": stopping.get("MaxWaitTimeInSeconds"),
            "input_mode": algorithm.get("TrainingInputMode", "File"),
            "base_job_name": base_from_name(described["TrainingJobName"]),
            "output_path": described["OutputDataConfig"]["S3OutputPath"],
            "hyperparameters": dict(described.get("HyperParameters", {})),
            "metric_definitions": algorithm.get("MetricDefinitions"),
            "container_entry_point": algorithm.get("ContainerEntrypoint"),
            "container_arguments": algorithm.get("ContainerArguments"),
            "environment": described.get("Environment"),
            "enable_network_isolation": described.get("EnableNetworkIsolation"),
            "use_spot_instances": bool(described.get("EnableManagedSpotTraining")),
            "model_channel_name": model_channel_name,
        }
        checkpoint = described.get("CheckpointConfig")
        if checkpoint:
            params["checkpoint_s3_uri"] = checkpoint["S3Uri"]
            params["checkpoint_local_path"] = checkpoint.get("LocalPath")
        for channel in described.get("InputDataConfig", []):
            if channel["ChannelName"] == model_channel_name:
                params["model_uri"] = channel["DataSource"]["S3DataSource"]["S3Uri"]
        return params


def _removed_warning(what: str) -> None:
    warnings.warn(f"{what} is a no-op in the SageMaker SDK v2", DeprecationWarning, stacklevel=3)


def _role_arn(role: str | None, account: str) -> str:
    """Any role name becomes an ARN, as the SDK's expand_role does; no IAM is asked."""
    if not role:
        return DEFAULT_ROLE
    if role.startswith("arn:"):
        return role
    return f"arn:aws:iam::{account}:role/{role}"


def _tag_list(tags: list[dict[str, str]] | dict[str, str] | None) -> list[dict[str, str]]:
    if isinstance(tags, dict):
        return [{"Key": key, "Value": value} for key, value in tags.items()]
    return list(tags or [])
