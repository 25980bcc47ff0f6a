"""`PyTorch`: script mode in `dockyard/pytorch:<framework_version>` (or your image_uri)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dockyard.sdk._compat import accepts_v1_names
from dockyard.sdk.estimator import Framework
from dockyard.sdk.pytorch.model import PyTorchModel

__all__ = ["PyTorch"]


class PyTorch(Framework):
    """The SDK's PyTorch estimator. `distribution={"torch_distributed": {"enabled": True}}` runs
    the script under torchrun on every host; `pytorchddp` and `mpi` work as on SageMaker.
    py_version is recorded but does not choose the image."""

    _framework_name = "pytorch"
    _model_class = PyTorchModel

    @accepts_v1_names
    def __init__(
        self,
        entry_point: str | None = None,
        framework_version: str | None = None,
        py_version: str | None = None,
        source_dir: str | None = None,
        hyperparameters: Mapping[str, Any] | None = None,
        image_uri: str | None = None,
        distribution: Mapping[str, Any] | None = None,
        compiler_config: Any = None,
        **kwargs: Any,
    ) -> None:
        if compiler_config is not None:
            raise ValueError("compiler_config (SageMaker Training Compiler) needs GPUs on AWS")
        super().__init__(
            entry_point or "",
            source_dir,
            hyperparameters,
            framework_version=framework_version,
            py_version=py_version,
            image_uri=image_uri,
            distribution=distribution,
            **kwargs,
        )
