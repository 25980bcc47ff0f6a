"""PyTorch script mode and serving, as `sagemaker.pytorch`."""

from dockyard.sdk.pytorch.estimator import PyTorch
from dockyard.sdk.pytorch.model import PyTorchModel, PyTorchPredictor

__all__ = ["PyTorch", "PyTorchModel", "PyTorchPredictor"]
