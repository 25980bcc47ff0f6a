"""SageMaker Python SDK (v2) notebook code on dockyard: `import dockyard.sdk as sagemaker`.

Estimators (`estimator.Estimator` for your own image, `pytorch.PyTorch`, `sklearn.SKLearn`,
`estimator.Framework`), `Session`, `inputs.TrainingInput` and `get_execution_role` behave as the
SDK's, and so does serving what they trained: `estimator.deploy()` / `model.Model` /
`predictor.Predictor` with `serializers` and `deserializers`, and `transformer.Transformer` for
batch transform. SageMaker SDK v1 names are accepted with a DeprecationWarning. Everything goes
through the dockyard server (a local one is started on first use) and its object store.
"""

from dockyard.sdk import (
    deserializers,
    estimator,
    exceptions,
    inputs,
    model,
    predictor,
    pytorch,
    serializers,
    session,
    sklearn,
    transformer,
)
from dockyard.sdk.inputs import TrainingInput, s3_input
from dockyard.sdk.model import FrameworkModel, Model
from dockyard.sdk.predictor import Predictor, RealTimePredictor
from dockyard.sdk.session import (
    Session,
    container_def,
    get_execution_role,
    production_variant,
)
from dockyard.sdk.transformer import Transformer

__all__ = [
    "FrameworkModel",
    "Model",
    "Predictor",
    "RealTimePredictor",
    "Session",
    "TrainingInput",
    "Transformer",
    "container_def",
    "deserializers",
    "estimator",
    "exceptions",
    "get_execution_role",
    "inputs",
    "model",
    "predictor",
    "production_variant",
    "pytorch",
    "s3_input",
    "serializers",
    "session",
    "sklearn",
    "transformer",
]
