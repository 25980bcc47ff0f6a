"""Fixtures for the API tests: the real aws CLI, signed with the key of a server started
in-process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import RunningServer

AWS = Path(sys.executable).parent / "aws"


def aws_env(server: RunningServer, tmp_path: Path) -> dict[str, str]:
    """What the aws CLI needs: the server's keys, a region, and no config of this machine."""
    key = server.access_key
    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = us-east-1\n")
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": key.access_key_id,
        "AWS_SECRET_ACCESS_KEY": key.secret_access_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(config),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }


@pytest.fixture
def aws(server: RunningServer, tmp_path: Path) -> Any:
    """Runs `aws --endpoint-url <server> ...`; returns the completed process (checked unless
    check=False)."""
    env = aws_env(server, tmp_path)

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(AWS), "--endpoint-url", server.url, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"aws {' '.join(args)} failed: {done.stderr}")
        return done

    return run
