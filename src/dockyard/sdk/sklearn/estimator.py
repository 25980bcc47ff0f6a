"""`SKLearn`: script mode in `dockyard/sklearn:<framework_version>` (or your image_uri)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.sdk._compat import accepts_v1_names
from dockyard.sdk.estimator import Framework
from dockyard.sdk.sklearn.model import SKLearnModel

__all__ = ["SKLearn"]


class SKLearn(Framework):
    """The SDK's SKLearn estimator: one host (scikit-learn does not train across hosts), Python
    3 only, as on SageMaker."""

    _framework_name = "sklearn"
    _model_class = SKLearnModel

    @accepts_v1_names
    def __init__(
        self,
        entry_point: str,
        framework_version: str | None = None,
        py_version: str | None = "py3",
        source_dir: str | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        image_uri: str | None = None,
        image_uri_region: str | None = None,
        **kwargs: Any,
    ) -> None:
        if py_version not in (None, "py3"):
            raise ValueError("the scikit-learn image runs Python 3 only: use py_version='py3'")
        if kwargs.get("instance_count") not in (None, 1):
            raise ValueError(
                "scikit-learn does not train across hosts: remove instance_count or set it to 1"
            )
        super().__init__(
            entry_point,
            source_dir,
            hyperparameters,
            framework_version=framework_version,
            py_version=py_version,
            image_uri=image_uri,
            **kwargs,
        )
