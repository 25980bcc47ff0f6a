"""The script-mode examples, run as a user runs them: notebook code on dockyard.sdk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, free_port

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    ("example", "expected"),
    [
        ("sklearn-script-mode", "cv_accuracy="),
        ("pytorch-script-mode", "rank 1 of 2 (master algo-1)"),
    ],
)
def test_example_trains_to_completion(
    example: str, expected: str, clean_env: Path, shared_envs_dir: Path
) -> None:
    env = {
        **os.environ,
        "DOCKYARD_HOME": str(clean_env),
        "DOCKYARD_PORT": str(free_port()),
        "DOCKYARD_ENVS_DIR": str(shared_envs_dir),
    }
    try:
        result = subprocess.run(
            [sys.executable, str(EXAMPLES / example / "run.py")],
            env=env, capture_output=True, text=True, timeout=1200,
        )  # fmt: skip
    finally:
        subprocess.run(
            [sys.executable, "-m", "dockyard.cli.main", "server", "stop"],
            env=env, capture_output=True, timeout=60, check=False,
        )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert "Completed - Training job completed" in output
    assert expected in output
    assert "model: s3://sagemaker-us-east-1-000000000000/" in output
