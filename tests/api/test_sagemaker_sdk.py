"""The real SageMaker Python SDK (v2) as a client: Estimator.fit with logs against dockyard."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, RunningServer

pytestmark = pytest.mark.slow

SDK_VENV = Path(__file__).resolve().parents[2] / ".venv-sdk"
SDK_REQUIREMENT = "sagemaker>=2.200,<3"


@pytest.fixture(scope="session")
def sdk_python() -> Path:
    """A virtual environment holding the SageMaker SDK, apart from dockyard's own (the SDK
    pins many packages); made once and reused."""
    python = SDK_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(SDK_VENV)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", SDK_REQUIREMENT], check=True, timeout=900
        )
    return python


FIT = textwrap.dedent(
    """
    import boto3, sagemaker
    from sagemaker.estimator import Estimator

    session = sagemaker.Session(
        boto_session=boto3.Session(region_name="us-east-1"), default_bucket="demo"
    )
    estimator = Estimator(
        image_uri={image!r},
        role="arn:aws:iam::111111111111:role/r",
        instance_count=1,
        instance_type="ml.m5.large",
        output_path="s3://demo/sdk-out",
        sagemaker_session=session,
        hyperparameters={{"target": "Species"}},
        metric_definitions=[{{"Name": "acc", "Regex": "train:accuracy=([0-9.]+)"}}],
    )
    estimator.fit({{"train": "s3://demo/iris"}}, logs=True, job_name="sdk-fit")
    print("MODEL", estimator.model_data)
    """
)


def test_estimator_fit_streams_logs_and_completes(
    server: RunningServer, sdk_python: Path, tmp_path: Path
) -> None:
    server.engine.store.create_bucket("demo")
    server.engine.store.put_file("demo", "iris/iris.csv", EXAMPLES / "data" / "iris" / "iris.csv")
    config = tmp_path / "sdk.yaml"
    config.write_text(
        "SchemaVersion: '1.0'\nSageMaker:\n  PythonSDK:\n    Modules:\n"
        "      TelemetryOptOut: true\n"
    )
    script = tmp_path / "fit.py"
    script.write_text(FIT.format(image=str(EXAMPLES / "r-randomforest")))
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": server.url,
        "AWS_ACCESS_KEY_ID": server.access_key.access_key_id,
        "AWS_SECRET_ACCESS_KEY": server.access_key.secret_access_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "SAGEMAKER_USER_CONFIG_OVERRIDE": str(config),
        "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    }
    result = subprocess.run(
        [str(sdk_python), str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Completed - Training job completed" in output
    assert "train:accuracy=" in output  # the job's log, read through GetLogEvents
    assert "MODEL s3://demo/sdk-out/sdk-fit/output/model.tar.gz" in output
    described = server.client("sagemaker").describe_training_job(TrainingJobName="sdk-fit")
    assert described["FinalMetricDataList"][0]["MetricName"] == "acc"
