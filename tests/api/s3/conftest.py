"""Fixtures for the S3 API tests: a boto3 S3 client (path-style) signed with the key of a real
server started in-process (the aws CLI fixture is tests/api's)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.config import Config

from tests.conftest import RunningServer


@pytest.fixture
def s3(server: RunningServer) -> Any:
    return server.client_with_config("s3", Config(s3={"addressing_style": "path"}))
