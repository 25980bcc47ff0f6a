"""scikit-learn script mode, as `sagemaker.sklearn`."""

from dockyard.sdk.sklearn.estimator import SKLearn

__all__ = ["SKLearn"]
