"""Fixtures of the validation tests: the keys every request is signed with (one fixture for
all) and a real engine behind the real app, called in-process."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from botocore.credentials import Credentials

from dockyard.api.app import create_app
from dockyard.api.keys import ensure_home_key
from dockyard.engine.core import Engine
from dockyard.settings import Settings
from tests.security.validation.wire import Api


@pytest.fixture
def api_credentials(clean_env: Path) -> Credentials:
    """The access key pair a server on this test's DOCKYARD_HOME accepts: the home's own pair,
    made here if the server has not made it yet (the same file the server reads)."""
    key = ensure_home_key(Settings(home=clean_env))
    return Credentials(key.access_key_id, key.secret_access_key)


@dataclass
class InProcess:
    """A real engine (SQLite file, sandboxes) behind the real app, called in-process."""

    api: Api
    engine: Engine
    settings: Settings


@pytest.fixture
def in_process(
    clean_env: Path, api_credentials: Credentials, request: pytest.FixtureRequest
) -> Iterator[InProcess]:
    """Settings changes come from indirect parametrization: `@pytest.mark.parametrize(
    "in_process", [{"max_instance_count": 2}], indirect=True)`."""
    changes = getattr(request, "param", {})
    settings = Settings(home=clean_env, stop_grace_seconds=2.0, **changes)
    engine = Engine.open(settings)
    api = Api(api_credentials, app=create_app(engine, close_engine=False))
    try:
        yield InProcess(api, engine, settings)
    finally:
        api.close()
        engine.close()
