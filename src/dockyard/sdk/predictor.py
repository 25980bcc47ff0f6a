"""`Predictor`: invoke an endpoint with a serializer and a deserializer, update it and delete it,
as the SDK's. Errors from the endpoint arrive as botocore ClientError (a failing container as
ModelError, 424, with OriginalStatusCode and OriginalMessage), as they do from SageMaker."""

from __future__ import annotations

import contextlib
import functools
import warnings
from typing import TYPE_CHECKING, Any, TypeVar

from botocore.exceptions import ClientError

from dockyard.sdk._compat import deprecated_alias, warn_v1_name
from dockyard.sdk._hosting import production_variant
from dockyard.sdk._names import name_from_base
from dockyard.sdk.deserializers import (
    BaseDeserializer,
    BytesDeserializer,
    CSVDeserializer,
    JSONDeserializer,
    NumpyDeserializer,
)
from dockyard.sdk.serializers import (
    BaseSerializer,
    CSVSerializer,
    IdentitySerializer,
    JSONSerializer,
    NumpySerializer,
)
from dockyard.sdk.session import Session

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "Predictor",
    "RealTimePredictor",
    "csv_deserializer",
    "csv_serializer",
    "json_deserializer",
    "json_serializer",
    "npy_serializer",
    "numpy_deserializer",
]


class Predictor:
    """Make predictions with a deployed endpoint. `predict(data)` sends
    `serializer.serialize(data)` with the serializer's Content-Type and the deserializer's
    Accept, and returns `deserializer.deserialize(body, content_type)`; by default bytes go in
    and come out unchanged."""

    def __init__(
        self,
        endpoint_name: str | None = None,
        sagemaker_session: Session | None = None,
        serializer: BaseSerializer = IdentitySerializer(),  # noqa: B008 - the SDK's default
        deserializer: BaseDeserializer = BytesDeserializer(),  # noqa: B008 - the SDK's default
        component_name: str | None = None,
        **kwargs: Any,
    ) -> None:
        if "endpoint" in kwargs:  # the v1 name
            warn_v1_name("endpoint", "endpoint_name", stacklevel=3)
            endpoint_name = kwargs.pop("endpoint")
        for removed in ("content_type", "accept"):
            if removed in kwargs:
                kwargs.pop(removed)
                _removed_warning(f"the {removed} argument (the serializers set it now)")
        if kwargs:
            raise TypeError(
                f"{type(self).__name__}() got an unexpected keyword argument {sorted(kwargs)[0]!r}"
            )
        if not endpoint_name:
            raise TypeError(f"{type(self).__name__}() needs an endpoint_name")
        if component_name is not None:
            raise ValueError(
                "inference components are not supported by dockyard: leave out component_name"
            )
        self.endpoint_name = endpoint_name
        self.component_name = None
        self.sagemaker_session = sagemaker_session or Session()
        self.serializer = serializer
        self.deserializer = deserializer
        self._endpoint_config_name: str | None = None
        self._model_names: list[str] | None = None
        self._content_type: str | None = None
        self._accept: str | tuple[str, ...] | None = None

    # -- invoking ------------------------------------------------------------------------------

    def predict(
        self,
        data: Any,
        initial_args: dict[str, Any] | None = None,
        target_model: str | None = None,
        target_variant: str | None = None,
        inference_id: str | None = None,
        custom_attributes: str | None = None,
        component_name: str | None = None,
    ) -> Any:
        """The endpoint's prediction for `data`. `initial_args` are InvokeEndpoint arguments
        that win over the ones derived here (EndpointName, ContentType, Accept)."""
        if component_name is not None:
            raise ValueError("inference components are not supported by dockyard")
        request = self._create_request_args(
            data, initial_args, target_model, target_variant, inference_id, custom_attributes
        )
        response = self.sagemaker_session.sagemaker_runtime_client.invoke_endpoint(**request)
        return self._handle_response(response)

    def _create_request_args(
        self,
        data: Any,
        initial_args: dict[str, Any] | None = None,
        target_model: str | None = None,
        target_variant: str | None = None,
        inference_id: str | None = None,
        custom_attributes: str | None = None,
    ) -> dict[str, Any]:
        args = dict(initial_args or {})
        args.setdefault("EndpointName", self.endpoint_name)
        if "ContentType" not in args:
            args["ContentType"] = _header(self.content_type)
        if "Accept" not in args:
            args["Accept"] = _header(self.accept)
        optional = {
            "TargetModel": target_model,
            "TargetVariant": target_variant,
            "InferenceId": inference_id,
            "CustomAttributes": custom_attributes,
        }
        args.update({key: value for key, value in optional.items() if value})
        args["Body"] = self.serializer.serialize(data)
        return args

    def _handle_response(self, response: dict[str, Any]) -> Any:
        content_type = response.get("ContentType", "application/octet-stream")
        return self.deserializer.deserialize(response["Body"], content_type)

    @property
    def content_type(self) -> str:
        """The Content-Type sent: the serializer's, unless set here."""
        return self._content_type or self.serializer.CONTENT_TYPE

    @content_type.setter
    def content_type(self, value: str) -> None:
        self._content_type = value

    @property
    def accept(self) -> str | tuple[str, ...]:
        """The Accept sent: the deserializer's media types, unless set here."""
        return self._accept or self.deserializer.ACCEPT

    @accept.setter
    def accept(self, value: str | tuple[str, ...]) -> None:
        self._accept = value

    @property
    def endpoint(self) -> str:
        """Deprecated (SageMaker SDK v1): use endpoint_name."""
        warn_v1_name("Predictor.endpoint", "endpoint_name", stacklevel=3)
        return self.endpoint_name

    # -- the endpoint --------------------------------------------------------------------------

    def update_endpoint(
        self,
        initial_instance_count: int | None = None,
        instance_type: str | None = None,
        accelerator_type: str | None = None,
        model_name: str | None = None,
        tags: list[dict[str, str]] | None = None,
        kms_key: str | None = None,
        data_capture_config_dict: dict[str, Any] | None = None,
        max_instance_count: int | None = None,
        min_instance_count: int | None = None,
        wait: bool = True,
    ) -> None:
        """Move the endpoint to a new endpoint config (blue/green): a copy of the current one,
        or one variant of `model_name` (default: the current model) on `initial_instance_count`
        instances of `instance_type` — then both must be given, as the SDK requires. KMS keys,
        data capture and instance scaling are ignored."""
        variants = None
        if initial_instance_count or instance_type or accelerator_type or model_name:
            if instance_type is None or initial_instance_count is None:
                raise ValueError(
                    "Missing initial_instance_count and/or instance_type. Provided values: "
                    f"initial_instance_count={initial_instance_count}, "
                    f"instance_type={instance_type}, accelerator_type={accelerator_type}, "
                    f"model_name={model_name}."
                )
            if model_name is None:
                current = self._get_model_names()
                if len(current) > 1:
                    raise ValueError(
                        "Unable to choose a default model for a new EndpointConfig because the "
                        f"endpoint has multiple models: {', '.join(current)}"
                    )
                model_name = current[0]
            variants = [
                production_variant(
                    model_name,
                    instance_type,
                    initial_instance_count,
                    accelerator_type=accelerator_type,
                )
            ]
        current_config = self._get_endpoint_config_name()
        session = self.sagemaker_session
        if variants is None:
            variants = session.describe_endpoint_config(current_config)["ProductionVariants"]
        new_config = name_from_base(current_config)
        request: dict[str, Any] = {"EndpointConfigName": new_config, "ProductionVariants": variants}
        if tags:
            request["Tags"] = tags
        session.sagemaker_client.create_endpoint_config(**request)
        session.update_endpoint(self.endpoint_name, new_config, wait=wait)
        self._endpoint_config_name = new_config
        self._model_names = [v["ModelName"] for v in variants if "ModelName" in v]

    def delete_endpoint(self, delete_endpoint_config: bool = True) -> None:
        """Delete the endpoint (its instances stop in the background) and, by default, its
        endpoint config. The models stay: delete_model() deletes them, before or after this."""
        # Kept for delete_model(), which needs the config; if the config is gone already,
        # deleting the endpoint must still work.
        with contextlib.suppress(ClientError):
            self._get_model_names()
        if delete_endpoint_config:
            self.sagemaker_session.delete_endpoint_config(self._get_endpoint_config_name())
        self.sagemaker_session.delete_endpoint(self.endpoint_name)

    def delete_predictor(self, wait: bool = False) -> None:
        self.delete_endpoint()

    def delete_model(self) -> None:
        """Delete the models behind the endpoint."""
        failed = []
        for name in self._get_model_names():
            try:
                self.sagemaker_session.delete_model(name)
            except ClientError:
                failed.append(name)
        if failed:
            raise RuntimeError(
                "One or more models cannot be deleted, please retry. \n"
                f"Failed models: {', '.join(failed)}"
            )

    def _get_endpoint_config_name(self) -> str:
        if self._endpoint_config_name is None:
            described = self.sagemaker_session.describe_endpoint(self.endpoint_name)
            self._endpoint_config_name = str(described["EndpointConfigName"])
        return self._endpoint_config_name

    def _get_model_names(self) -> list[str]:
        if self._model_names is None:
            config = self.sagemaker_session.describe_endpoint_config(
                self._get_endpoint_config_name()
            )
            self._model_names = [
                v["ModelName"] for v in config["ProductionVariants"] if "ModelName" in v
            ]
        return self._model_names

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint_name={self.endpoint_name!r})"


def _header(value: str | tuple[str, ...]) -> str:
    return value if isinstance(value, str) else ", ".join(value)


def _removed_warning(what: str) -> None:
    warnings.warn(f"{what} is a no-op in the SageMaker SDK v2", DeprecationWarning, stacklevel=3)


RealTimePredictor = deprecated_alias(
    Predictor, "sagemaker.predictor.RealTimePredictor", "sagemaker.predictor.Predictor"
)

Codec = TypeVar("Codec", BaseSerializer, BaseDeserializer)


def _deprecated_instance(codec: Codec, method: str, old: str, new: str) -> Codec:
    """A v1 (de)serializer object: works as `new` does, and warns when used."""
    original: Callable[..., Any] = getattr(codec, method)

    @functools.wraps(original)
    def warned(*args: Any, **kwargs: Any) -> Any:
        warn_v1_name(old, new, stacklevel=3)
        return original(*args, **kwargs)

    setattr(codec, method, warned)
    return codec


csv_serializer = _deprecated_instance(
    CSVSerializer(), "serialize", "csv_serializer", "sagemaker.serializers.CSVSerializer()"
)
json_serializer = _deprecated_instance(
    JSONSerializer(), "serialize", "json_serializer", "sagemaker.serializers.JSONSerializer()"
)
npy_serializer = _deprecated_instance(
    NumpySerializer(), "serialize", "npy_serializer", "sagemaker.serializers.NumpySerializer()"
)
csv_deserializer = _deprecated_instance(
    CSVDeserializer(),
    "deserialize",
    "csv_deserializer",
    "sagemaker.deserializers.CSVDeserializer()",
)
json_deserializer = _deprecated_instance(
    JSONDeserializer(),
    "deserialize",
    "json_deserializer",
    "sagemaker.deserializers.JSONDeserializer()",
)
numpy_deserializer = _deprecated_instance(
    NumpyDeserializer(),
    "deserialize",
    "numpy_deserializer",
    "sagemaker.deserializers.NumpyDeserializer()",
)
