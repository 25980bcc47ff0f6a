"""PyTorch script mode, as `sagemaker.pytorch`."""

from dockyard.sdk.pytorch.estimator import PyTorch

__all__ = ["PyTorch"]
