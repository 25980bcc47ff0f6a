"""SageMaker Python SDK (v2) notebook code on dockyard: `import dockyard.sdk as sagemaker`.

Estimators (`estimator.Estimator` for your own image, `pytorch.PyTorch`, `sklearn.SKLearn`,
`estimator.Framework`), `Session`, `inputs.TrainingInput` and `get_execution_role` behave as the
SDK's; SageMaker SDK v1 names are accepted with a DeprecationWarning. Everything goes through the
dockyard server (a local one is started on first use) and its object store.
"""

from dockyard.sdk import estimator, exceptions, inputs, pytorch, session, sklearn
from dockyard.sdk.inputs import TrainingInput, s3_input
from dockyard.sdk.session import Session, get_execution_role

__all__ = [
    "Session",
    "TrainingInput",
    "estimator",
    "exceptions",
    "get_execution_role",
    "inputs",
    "pytorch",
    "s3_input",
    "session",
    "sklearn",
]
