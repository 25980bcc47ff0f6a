"""Estimators: `Estimator` for your own image (BYOC) and `Framework`, script mode on a framework
image; `EstimatorBase` (in _base.py) holds what they share. Each says which Model serves what
it trained (`create_model`)."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping
from typing import Any

from dockyard.client.uris import image_ref as image_reference
from dockyard.sdk._base import EstimatorBase
from dockyard.sdk._compat import accepts_v1_names, warn_v1_name
from dockyard.sdk._distribution import (
    distribution_from_hyperparameters,
    distribution_hyperparameters,
)
from dockyard.sdk._framework import VersionedFrameworkModel
from dockyard.sdk.model import FrameworkModel, Model
from dockyard.sdk.predictor import Predictor

__all__ = ["Estimator", "EstimatorBase", "Framework"]


class Estimator(EstimatorBase):
    """Your own image (BYOC): `image_uri` is an image folder (with a Dockerfile) or an image
    name the server knows. Hyperparameter values are sent as `str(value)`, as the SDK does."""

    @accepts_v1_names
    def __init__(
        self,
        image_uri: str,
        role: str | None = None,
        instance_count: int | None = None,
        instance_type: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(role, instance_count, instance_type, **kwargs)
        self.image_uri = image_uri

    def training_image_uri(self) -> str:
        return image_reference(self.image_uri)

    def hyperparameters(self) -> dict[str, Any]:
        return self._hyperparameters

    def set_hyperparameters(self, **kwargs: Any) -> None:
        """With a source_dir the values are JSON-encoded here, as the SDK does (values given to
        the constructor are not)."""
        if self.source_dir:
            kwargs = {key: json.dumps(value) for key, value in kwargs.items()}
        self._hyperparameters.update(kwargs)

    def create_model(
        self,
        role: str | None = None,
        image_uri: str | None = None,
        predictor_cls: Any = None,
        vpc_config_override: Any = None,
        **kwargs: Any,
    ) -> Model:
        """A Model of the latest job's model data in the training image (or `image_uri`);
        `kwargs` go to Model (env, entry_point, source_dir, ...)."""
        _drop_v2_removed_arguments(kwargs)
        if "image" in kwargs:  # the v1 name
            warn_v1_name("image", "image_uri", stacklevel=3)
            image_uri = kwargs.pop("image")
        kwargs.setdefault("enable_network_isolation", self.enable_network_isolation())
        return Model(
            image_uri or self.image_uri,
            self.model_data,
            role or self.role,
            sagemaker_session=self.sagemaker_session,
            predictor_cls=predictor_cls or Predictor,
            **kwargs,
        )

    @classmethod
    def _init_params_from_description(
        cls, described: dict[str, Any], model_channel_name: str
    ) -> dict[str, Any]:
        params = super()._init_params_from_description(described, model_channel_name)
        params["image_uri"] = described["AlgorithmSpecification"]["TrainingImage"]
        return params


_FRAMEWORK_IMAGE = re.compile(r"^dockyard/(?P<framework>[^:/]+):(?P<version>[^:/]+)$")


class Framework(EstimatorBase):
    """Script mode: `entry_point` (in `source_dir`) runs in a framework image — `image_uri`, or
    `dockyard/<framework>:<framework_version>`. Every hyperparameter value is JSON-encoded, and
    `distribution` becomes the toolkit's `sagemaker_*` launcher flags."""

    _framework_name: str | None = None
    # The framework's Model class (SKLearnModel, PyTorchModel); without one, create_model() makes
    # a FrameworkModel in the training image.
    _model_class: type[VersionedFrameworkModel] | None = None

    @accepts_v1_names
    def __init__(
        self,
        entry_point: str,
        source_dir: str | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        *,
        framework: str | None = None,
        framework_version: str | None = None,
        py_version: str | None = None,
        image_uri: str | None = None,
        distribution: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not entry_point:
            raise ValueError("entry_point is required: the script that trains")
        framework = framework or self._framework_name
        if image_uri is None and (framework is None or framework_version is None):
            raise ValueError(
                "framework_version was None, yet image_uri was also None: give framework_version "
                f"(the image is then dockyard/{framework or '<framework>'}:<framework_version>) "
                "or image_uri"
            )
        super().__init__(
            entry_point=entry_point,
            source_dir=source_dir,
            hyperparameters=hyperparameters,
            **kwargs,
        )
        self.framework = framework
        self.framework_version = framework_version
        self.py_version = py_version
        self.image_uri = image_uri
        self.distribution = dict(distribution or {})
        distribution_hyperparameters(self.distribution, self.instance_type)  # fail early

    def training_image_uri(self) -> str:
        if self.image_uri is not None:
            return image_reference(self.image_uri)
        return f"dockyard/{self.framework}:{self.framework_version}"

    def hyperparameters(self) -> dict[str, Any]:
        values = {**self._hyperparameters}
        values.update(distribution_hyperparameters(self.distribution, self.instance_type))
        return {str(key): json.dumps(value) for key, value in values.items()}

    def create_model(
        self,
        model_server_workers: int | None = None,
        role: str | None = None,
        vpc_config_override: Any = None,
        entry_point: str | None = None,
        source_dir: str | None = None,
        dependencies: list[str] | None = None,
        **kwargs: Any,
    ) -> FrameworkModel:
        """A FrameworkModel of the latest job's model data whose inference code is, unless
        given here, the training code: the entry point and the code fit() staged (so model_fn
        and friends may sit beside the training code, under `if __name__ == "__main__"`)."""
        _drop_v2_removed_arguments(kwargs)
        kwargs["name"] = self._get_or_create_name(kwargs.get("name"))
        kwargs.setdefault("enable_network_isolation", self.enable_network_isolation())
        if dependencies is None:
            # Staged code already holds the dependencies (they went into its archive).
            staged = source_dir is None and self.uploaded_code is not None
            dependencies = [] if staged else self.dependencies
        arguments = {
            "role": role or self.role,
            "entry_point": entry_point or self._model_entry_point(),
            "source_dir": source_dir or self._model_source_dir(),
            "container_log_level": self.container_log_level,
            "code_location": self.code_location,
            "sagemaker_session": self.sagemaker_session,
            "dependencies": dependencies,
            **kwargs,
        }
        return self._framework_model(model_server_workers, arguments)

    def _framework_model(
        self, model_server_workers: int | None, arguments: dict[str, Any]
    ) -> FrameworkModel:
        if self._model_class is not None:
            arguments.setdefault("image_uri", self.image_uri)
            return self._model_class(
                self.model_data,
                framework_version=self.framework_version,
                py_version=self.py_version,
                model_server_workers=model_server_workers,
                **arguments,
            )
        image_uri = arguments.pop("image_uri", None) or self.training_image_uri()
        arguments.setdefault("predictor_cls", Predictor)
        model = FrameworkModel(self.model_data, image_uri, **arguments)
        model.model_server_workers = model_server_workers
        return model

    def _transform_env(self, model: Any, env: dict[str, str] | None) -> dict[str, str] | None:
        # As the SDK: a framework model's environment, with the transformer's over it.
        return {**model.env, **(env or {})}

    @classmethod
    def _init_params_from_description(
        cls, described: dict[str, Any], model_channel_name: str
    ) -> dict[str, Any]:
        params = super()._init_params_from_description(described, model_channel_name)
        decoded = {key: _json_or_text(value) for key, value in params["hyperparameters"].items()}
        params["entry_point"] = decoded.get("sagemaker_program")
        source = decoded.get("sagemaker_submit_directory")
        if isinstance(source, str):
            params["source_dir"] = source.removeprefix("file://")
        params["container_log_level"] = decoded.get("sagemaker_container_log_level", 20)
        params["distribution"] = distribution_from_hyperparameters(decoded)
        params["hyperparameters"] = {
            key: value for key, value in decoded.items() if not key.startswith("sagemaker_")
        }
        image = described["AlgorithmSpecification"]["TrainingImage"]
        match = _FRAMEWORK_IMAGE.match(image)
        if match and cls._framework_name in (None, match["framework"]):
            if cls._framework_name is None:
                params["framework"] = match["framework"]
            params["framework_version"] = match["version"]
        else:
            params["image_uri"] = image
        return params


def _drop_v2_removed_arguments(kwargs: dict[str, Any]) -> None:
    """create_model() arguments the SDK v2 removed (pass serializers to deploy()): warned about
    and dropped, as the SDK does."""
    for name in ("serializer", "deserializer", "content_type", "accept"):
        if name in kwargs:
            kwargs.pop(name)
            warnings.warn(
                f"{name} is a no-op in create_model() in the SageMaker SDK v2: pass serializers "
                "to deploy()",
                DeprecationWarning,
                stacklevel=3,
            )


def _json_or_text(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value
