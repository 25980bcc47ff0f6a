"""What the framework packages (sklearn, pytorch) share: a model served from
`dockyard/<framework>:<framework_version>` and a predictor that speaks .npy."""

from __future__ import annotations

from typing import Any

from dockyard.client.uris import image_ref
from dockyard.sdk.deserializers import BaseDeserializer, NumpyDeserializer
from dockyard.sdk.model import FrameworkModel
from dockyard.sdk.predictor import Predictor
from dockyard.sdk.serializers import BaseSerializer, NumpySerializer
from dockyard.sdk.session import Session


class NumpyPredictor(Predictor):
    """A Predictor sending and receiving .npy arrays (numpy is needed on this side too): what
    SKLearnPredictor and PyTorchPredictor are."""

    def __init__(
        self,
        endpoint_name: str,
        sagemaker_session: Session | None = None,
        serializer: BaseSerializer = NumpySerializer(),  # noqa: B008 - the SDK's default
        deserializer: BaseDeserializer = NumpyDeserializer(),  # noqa: B008 - the SDK's default
        component_name: str | None = None,
    ) -> None:
        super().__init__(
            endpoint_name,
            sagemaker_session,
            serializer=serializer,
            deserializer=deserializer,
            component_name=component_name,
        )


class VersionedFrameworkModel(FrameworkModel):
    """A framework model whose image is `dockyard/<framework>:<framework_version>` unless
    `image_uri` names one. The subclasses' signatures are the SDK's, with their own defaults
    (predictor_cls, py_version); this one takes what they pass on by name."""

    def __init__(
        self,
        model_data: str | None,
        *,
        framework_version: str | None,
        py_version: str | None,
        image_uri: str | None,
        model_server_workers: int | None,
        **kwargs: Any,
    ) -> None:
        if image_uri is None and framework_version is None:
            raise ValueError(
                "framework_version was None, yet image_uri was also None: give framework_version "
                f"(the image is then dockyard/{self._framework_name}:<framework_version>) or "
                "image_uri"
            )
        super().__init__(model_data, image_uri, **kwargs)
        self.framework_version = framework_version
        self.py_version = py_version
        self.model_server_workers = model_server_workers

    def serving_image_uri(self, region_name: str | None = None, instance_type: Any = None) -> str:
        return f"dockyard/{self._framework_name}:{self.framework_version}"

    def _image(self, instance_type: str | None) -> str:
        if self.image_uri:
            return image_ref(self.image_uri)
        return self.serving_image_uri(self.sagemaker_session.boto_region_name, instance_type)
