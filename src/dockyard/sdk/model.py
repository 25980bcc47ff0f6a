"""`Model`: an image plus model data (plus, optionally, inference code) — CreateModel, then
`deploy()` to an endpoint (→ Predictor) or `transformer()` for batch transform; `FrameworkModel`:
script-mode inference code (model_fn, predict_fn, ...) in a framework image. As the SDK's.
The versioned framework images' models (SKLearnModel, PyTorchModel) build on _framework.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dockyard.client.uris import image_ref
from dockyard.sdk._channels import server_uri
from dockyard.sdk._code import StagedCode, stage_code
from dockyard.sdk._compat import warn_v1_name
from dockyard.sdk._hosting import container_def, production_variant, refuse_aws_only
from dockyard.sdk._names import base_from_name, base_name_from_image, name_from_base
from dockyard.sdk.deserializers import BaseDeserializer
from dockyard.sdk.predictor import Predictor
from dockyard.sdk.serializers import BaseSerializer
from dockyard.sdk.session import Session
from dockyard.sdk.transformer import Transformer

__all__ = ["FrameworkModel", "Model"]

# deploy() arguments that concern AWS only (KMS, data capture, AMIs, ...): accepted, not sent.
IGNORED_DEPLOY_ARGUMENTS = frozenset(
    {
        "kms_key",
        "data_capture_config",
        "inference_recommendation_id",
        "accept_eula",
        "endpoint_logging",
        "routing_config",
        "model_reference_arn",
        "inference_ami_version",
    }
)
# deploy() arguments for SageMaker features dockyard does not have: refused, not ignored, since
# the endpoint would not behave as asked.
UNSUPPORTED_DEPLOY_ARGUMENTS = {
    "async_inference_config": "asynchronous inference",
    "explainer_config": "SageMaker Clarify explainers",
    "managed_instance_scaling": "instance auto-scaling",
    "inference_component_name": "inference components",
    "resources": "inference components (resources)",
}
SCRIPT_MODE_ENV = ("SAGEMAKER_PROGRAM", "SAGEMAKER_SUBMIT_DIRECTORY")
PredictorFactory = Callable[[str, Session], Any]


class Model:
    """A model to serve: `image_uri` (an image folder with a Dockerfile, or an image name the
    server knows, such as `dockyard/python:3.11`), `model_data` (a model.tar.gz: s3://, or —
    unlike on SageMaker — a local path or file:// URI), `env`, and optionally `entry_point` /
    `source_dir` / `dependencies`: inference code, handed to the container as
    SAGEMAKER_PROGRAM / SAGEMAKER_SUBMIT_DIRECTORY (the server puts it into /opt/ml/model/code).
    `vpc_config`, `model_kms_key`, `image_config` and `model_reference_arn` are ignored."""

    def __init__(
        self,
        image_uri: str | None = None,
        model_data: str | None = None,
        role: str | None = None,
        predictor_cls: PredictorFactory | None = None,
        env: dict[str, str] | None = None,
        name: str | None = None,
        vpc_config: dict[str, list[str]] | None = None,
        sagemaker_session: Session | None = None,
        enable_network_isolation: bool | None = None,
        model_kms_key: str | None = None,
        image_config: dict[str, Any] | None = None,
        source_dir: str | None = None,
        code_location: str | None = None,
        entry_point: str | None = None,
        container_log_level: int = 20,
        dependencies: list[str] | None = None,
        git_config: dict[str, str] | None = None,
        resources: Any = None,
        additional_model_data_sources: Any = None,
        model_reference_arn: str | None = None,
        **kwargs: Any,
    ) -> None:
        if "image" in kwargs:  # SageMaker SDK v1: Model(model_data, image, ...)
            if image_uri is not None:
                raise TypeError(
                    f"{type(self).__name__}() got both image (the SageMaker SDK v1 name) and "
                    "image_uri (the v2 name) for one argument; pass only image_uri"
                )
            warn_v1_name("image", "image_uri", stacklevel=3)
            image_uri = kwargs.pop("image")
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}() got an unexpected keyword argument {sorted(kwargs)[0]!r}"
            )
        if git_config:
            raise ValueError(
                "git_config is not supported by dockyard: clone the repository and pass its "
                "folder as source_dir"
            )
        if additional_model_data_sources or isinstance(model_data, dict):
            raise ValueError(
                "model data sources other than one model.tar.gz are not supported: give "
                "model_data as the URI of a model.tar.gz"
            )
        if resources is not None:
            raise ValueError("inference components (resources) are not supported by dockyard")
        if source_dir is not None and entry_point is None:
            raise ValueError("source_dir needs an entry_point: the inference script in it")
        self.image_uri = image_uri
        self.model_data = model_data
        self.role = role
        self.predictor_cls = predictor_cls
        self.env = dict(env or {})
        self.name = name
        self.vpc_config = vpc_config
        self.sagemaker_session = sagemaker_session or Session()
        self._enable_network_isolation = bool(enable_network_isolation)
        self.model_kms_key = model_kms_key
        self.image_config = image_config
        self.source_dir = source_dir
        self.code_location = code_location
        self.entry_point = entry_point
        self.container_log_level = container_log_level
        self.dependencies = list(dependencies or [])
        self.endpoint_name: str | None = None
        self.uploaded_code: StagedCode | None = None
        self._base_name: str | None = None

    # -- the CreateModel request ---------------------------------------------------------------

    def enable_network_isolation(self) -> bool:
        return self._enable_network_isolation

    def _uses_script_mode(self) -> bool:
        return bool(self.entry_point or self.source_dir or self.dependencies)

    def _image(self, instance_type: str | None) -> str:
        if not self.image_uri:
            raise ValueError(
                f"{type(self).__name__} needs an image_uri: an image folder or an image name "
                "such as dockyard/python:3.11"
            )
        return image_ref(self.image_uri)

    def prepare_container_def(
        self,
        instance_type: str | None = None,
        accelerator_type: str | None = None,
        serverless_inference_config: Any = None,
        accept_eula: bool | None = None,
        model_reference_arn: str | None = None,
    ) -> dict[str, Any]:
        """The model's container for CreateModel. Building it puts the inference code where the
        server can read it: in place for a server on this machine, uploaded to the object store
        for one elsewhere (or with dependencies)."""
        env = dict(self.env)
        if self._uses_script_mode():
            self._upload_code()
            env.update(self._script_mode_env_vars())
        env.update(self._serving_env_vars())
        return container_def(self._image(instance_type), self._model_data_uri(), env)

    def _serving_env_vars(self) -> dict[str, str]:
        """The framework model server's settings (FrameworkModel: the worker count); as in the
        SDK they win over `env`."""
        return {}

    def _upload_code(self) -> None:
        if self.entry_point is None:
            self.uploaded_code = None
            return
        session = self.sagemaker_session
        source_dir = self.source_dir
        if source_dir is not None and source_dir.startswith("file://"):
            source_dir = source_dir.removeprefix("file://")  # what an estimator trained with
        self.uploaded_code = stage_code(
            session,
            entry_point=self.entry_point,
            source_dir=source_dir,
            dependencies=self.dependencies,
            job_name=self.name or base_name_from_image(self._image(None), "model"),
            code_location=self.code_location,
            output_path=session.default_output_path(),
        )

    def _script_mode_env_vars(self) -> dict[str, str]:
        program, directory = (self.env.get(key, "") for key in SCRIPT_MODE_ENV)
        if self.uploaded_code is not None:
            program = self.uploaded_code.program
            directory = self.uploaded_code.submit_directory
        return {
            "SAGEMAKER_PROGRAM": program,
            "SAGEMAKER_SUBMIT_DIRECTORY": directory,
            "SAGEMAKER_CONTAINER_LOG_LEVEL": str(self.container_log_level),
            "SAGEMAKER_REGION": self.sagemaker_session.boto_region_name,
        }

    def _model_data_uri(self) -> str | None:
        if self.model_data is None:
            return None
        key_prefix = f"{self.name or 'model'}/model"
        return server_uri(self.sagemaker_session, self.model_data, key_prefix)

    def _ensure_name(self) -> None:
        """A name from the image when none was given — a new one for every model created from
        this object, as the SDK does."""
        if self.name is None:
            self._base_name = self._base_name or base_name_from_image(self._image(None), "Model")
        if self._base_name:
            self.name = name_from_base(self._base_name)

    # -- creating, deploying, deleting ---------------------------------------------------------

    def create(
        self,
        instance_type: str | None = None,
        accelerator_type: str | None = None,
        serverless_inference_config: Any = None,
        tags: list[dict[str, str]] | None = None,
        accept_eula: bool | None = None,
        model_reference_arn: str | None = None,
    ) -> None:
        """CreateModel, without an endpoint."""
        self._create_sagemaker_model(instance_type, accelerator_type, tags)

    def _create_sagemaker_model(
        self,
        instance_type: str | None = None,
        accelerator_type: str | None = None,
        tags: list[dict[str, str]] | None = None,
        serverless_inference_config: Any = None,
        accept_eula: bool | None = None,
        model_reference_arn: str | None = None,
    ) -> None:
        refuse_aws_only(accelerator_type, serverless_inference_config)
        self._ensure_name()
        assert self.name is not None
        container = self.prepare_container_def(instance_type)
        self.sagemaker_session.create_model(
            self.name,
            self.role,
            container,
            enable_network_isolation=self.enable_network_isolation(),
            tags=tags,
        )

    def deploy(
        self,
        initial_instance_count: int | None = None,
        instance_type: str | None = None,
        serializer: BaseSerializer | None = None,
        deserializer: BaseDeserializer | None = None,
        accelerator_type: str | None = None,
        endpoint_name: str | None = None,
        tags: list[dict[str, str]] | None = None,
        wait: bool = True,
        serverless_inference_config: Any = None,
        volume_size: int | None = None,
        model_data_download_timeout: int | None = None,
        container_startup_health_check_timeout: int | None = None,
        endpoint_type: Any = None,
        update_endpoint: bool = False,
        **kwargs: Any,
    ) -> Any:
        """Create the model, an endpoint config and an endpoint (all three named after the
        model unless `endpoint_name` is given) on `initial_instance_count` instances, wait
        until it is InService (unless `wait=False`), and return a predictor: `predictor_cls`'s,
        or — where the SDK returns None — a Predictor. `update_endpoint=True` moves the existing
        endpoint `endpoint_name` to this model instead."""
        self._check_deploy_arguments(kwargs, endpoint_type)
        refuse_aws_only(accelerator_type, serverless_inference_config)
        if not (instance_type and initial_instance_count):
            raise ValueError(
                "Must specify instance type and instance count unless using serverless inference"
            )
        self._create_sagemaker_model(instance_type, tags=tags)
        assert self.name is not None
        if endpoint_name:
            self.endpoint_name = endpoint_name
        else:
            self.endpoint_name = name_from_base(self._base_name or base_from_name(self.name))
        variant_options: dict[str, Any] = {
            "volume_size": volume_size,
            "model_data_download_timeout": model_data_download_timeout,
            "container_startup_health_check_timeout": container_startup_health_check_timeout,
        }
        session = self.sagemaker_session
        if update_endpoint:
            config = session.create_endpoint_config(
                self.name,
                self.name,
                initial_instance_count,
                instance_type,
                tags=tags,
                **variant_options,
            )
            session.update_endpoint(self.endpoint_name, config, wait=wait)
        else:
            variant = production_variant(
                self.name, instance_type, initial_instance_count, **variant_options
            )
            session.endpoint_from_production_variants(
                self.endpoint_name, [variant], tags=tags, wait=wait
            )
        factory = self.predictor_cls or Predictor
        predictor = factory(self.endpoint_name, session)
        if serializer:
            predictor.serializer = serializer
        if deserializer:
            predictor.deserializer = deserializer
        return predictor

    @staticmethod
    def _check_deploy_arguments(kwargs: dict[str, Any], endpoint_type: Any) -> None:
        for name, feature in UNSUPPORTED_DEPLOY_ARGUMENTS.items():
            if kwargs.get(name) is not None:
                raise ValueError(f"{feature} are not supported by dockyard: leave out {name}")
        unknown = sorted(set(kwargs) - IGNORED_DEPLOY_ARGUMENTS - set(UNSUPPORTED_DEPLOY_ARGUMENTS))
        if unknown:
            raise TypeError(f"deploy() got an unexpected keyword argument {unknown[0]!r}")
        if endpoint_type is not None and str(
            getattr(endpoint_type, "value", endpoint_type)
        ) not in (
            "ModelBased",
            "MODEL_BASED",
        ):
            raise ValueError("inference component based endpoints are not supported by dockyard")

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
        volume_kms_key: str | None = None,
    ) -> Transformer:
        """Create the model and return a Transformer for batch transform jobs with it."""
        self._create_sagemaker_model(instance_type, tags=tags)
        assert self.name is not None
        if self.enable_network_isolation():
            env = None  # as the SDK: an isolated container gets no extra environment
        return Transformer(
            self.name,
            instance_count,
            instance_type,
            strategy=strategy,
            assemble_with=assemble_with,
            output_path=output_path,
            output_kms_key=output_kms_key,
            accept=accept,
            max_concurrent_transforms=max_concurrent_transforms,
            max_payload=max_payload,
            env=env,
            tags=tags,
            base_transform_job_name=self._base_name or self.name,
            volume_kms_key=volume_kms_key,
            sagemaker_session=self.sagemaker_session,
        )

    def delete_model(self) -> None:
        if self.name is None:
            raise ValueError(
                "The SageMaker model must be created first before attempting to delete."
            )
        self.sagemaker_session.delete_model(self.name)


class FrameworkModel(Model):
    """Inference code in a framework image: `entry_point` (in `source_dir`) is always handed to
    the container as SAGEMAKER_PROGRAM / SAGEMAKER_SUBMIT_DIRECTORY, and dockyard.serving runs
    its model_fn / input_fn / predict_fn / output_fn."""

    _framework_name: str | None = None

    def __init__(
        self,
        model_data: str | None,
        image_uri: str | None,
        role: str | None = None,
        entry_point: str | None = None,
        source_dir: str | None = None,
        predictor_cls: PredictorFactory | None = None,
        env: dict[str, str] | None = None,
        name: str | None = None,
        container_log_level: int = 20,
        code_location: str | None = None,
        sagemaker_session: Session | None = None,
        dependencies: list[str] | None = None,
        git_config: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            image_uri,
            model_data,
            role,
            predictor_cls=predictor_cls,
            env=env,
            name=name,
            sagemaker_session=sagemaker_session,
            source_dir=source_dir,
            code_location=code_location,
            entry_point=entry_point,
            container_log_level=container_log_level,
            dependencies=dependencies,
            git_config=git_config,
            **kwargs,
        )
        self.model_server_workers: int | None = None

    def _uses_script_mode(self) -> bool:
        return True

    def _serving_env_vars(self) -> dict[str, str]:
        if self.model_server_workers:
            return {"SAGEMAKER_MODEL_SERVER_WORKERS": str(self.model_server_workers)}
        return {}
