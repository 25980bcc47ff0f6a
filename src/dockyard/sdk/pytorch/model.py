"""`PyTorchModel` and `PyTorchPredictor`: PyTorch inference code served from
`dockyard/pytorch:<framework_version>` (or your image_uri)."""

from __future__ import annotations

from typing import Any

from dockyard.sdk._framework import NumpyPredictor, VersionedFrameworkModel
from dockyard.sdk.model import PredictorFactory

__all__ = ["PyTorchModel", "PyTorchPredictor"]


class PyTorchPredictor(NumpyPredictor):
    """A Predictor sending and receiving .npy arrays (numpy is needed on this side too)."""


class PyTorchModel(VersionedFrameworkModel):
    """The SDK's PyTorchModel: `entry_point` (with model_fn, predict_fn, ...) runs in the
    PyTorch image (CPU). framework_version has no default here — the SDK's "1.3" names no
    dockyard image — and py_version is recorded but does not choose the image."""

    _framework_name = "pytorch"

    def __init__(
        self,
        model_data: str | None,
        role: str | None = None,
        entry_point: str | None = None,
        framework_version: str | None = None,
        py_version: str | None = None,
        image_uri: str | None = None,
        predictor_cls: PredictorFactory | None = PyTorchPredictor,
        model_server_workers: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            model_data,
            role=role,
            entry_point=entry_point,
            framework_version=framework_version,
            py_version=py_version,
            image_uri=image_uri,
            predictor_cls=predictor_cls,
            model_server_workers=model_server_workers,
            **kwargs,
        )
