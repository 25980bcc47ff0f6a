"""scikit-learn script mode and serving, as `sagemaker.sklearn`."""

from dockyard.sdk.sklearn.estimator import SKLearn
from dockyard.sdk.sklearn.model import SKLearnModel, SKLearnPredictor

__all__ = ["SKLearn", "SKLearnModel", "SKLearnPredictor"]
