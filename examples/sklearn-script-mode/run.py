"""Train the scikit-learn script-mode example with SageMaker SDK notebook code.

The only change from a SageMaker notebook is the import line. Run it with
`.venv/bin/python examples/sklearn-script-mode/run.py`.
"""

from pathlib import Path

import dockyard.sdk as sagemaker
from dockyard.sdk.sklearn import SKLearn

HERE = Path(__file__).resolve().parent

session = sagemaker.Session()
train = session.upload_data(str(HERE.parent / "data" / "iris"), key_prefix="sklearn-example/iris")

estimator = SKLearn(
    entry_point="train.py",
    source_dir=str(HERE / "src"),
    framework_version="1.2-1",
    role=sagemaker.get_execution_role(),
    instance_count=1,
    instance_type="ml.m5.large",
    hyperparameters={"n-estimators": 50, "max-depth": 4},
    metric_definitions=[{"Name": "cv_accuracy", "Regex": "cv_accuracy=([0-9.]+)"}],
)
estimator.fit({"training": train})
print("model:", estimator.model_data)
