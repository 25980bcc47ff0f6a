"""`SKLearnModel` and `SKLearnPredictor`: scikit-learn inference code served from
`dockyard/sklearn:<framework_version>` (or your image_uri)."""

from __future__ import annotations

from typing import Any

from dockyard.sdk._framework import NumpyPredictor, VersionedFrameworkModel
from dockyard.sdk.model import PredictorFactory

__all__ = ["SKLearnModel", "SKLearnPredictor"]


class SKLearnPredictor(NumpyPredictor):
    """A Predictor sending and receiving .npy arrays (numpy is needed on this side too)."""


class SKLearnModel(VersionedFrameworkModel):
    """The SDK's SKLearnModel: `entry_point` (with model_fn, predict_fn, ...) runs in the
    scikit-learn image; Python 3 only."""

    _framework_name = "sklearn"

    def __init__(
        self,
        model_data: str | None,
        role: str | None = None,
        entry_point: str | None = None,
        framework_version: str | None = None,
        py_version: str | None = "py3",
        image_uri: str | None = None,
        predictor_cls: PredictorFactory | None = SKLearnPredictor,
        model_server_workers: int | None = None,
        **kwargs: Any,
    ) -> None:
        if py_version and py_version != "py3":
            raise ValueError("the scikit-learn image runs Python 3 only: use py_version='py3'")
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
