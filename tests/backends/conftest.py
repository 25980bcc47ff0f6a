"""Fixtures of the backend tests: the Ray cluster and dockyard servers running on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dockyard.settings import Settings
from tests.conftest import RunningServer, free_port
from tests.ray_cluster import RayCluster, ray_cluster  # noqa: F401 - a fixture


@pytest.fixture
def ray_server(
    ray_cluster: RayCluster,  # noqa: F811 - the fixture above
    clean_env: Path,
    shared_envs_dir: Path,
    postgres_url: str,
) -> Iterator[RunningServer]:
    """A server whose hosts run on the Ray cluster's nodes, with its metadata in PostgreSQL (as
    a team's server on a cluster would keep it)."""
    settings = Settings(
        home=clean_env,
        database_url=postgres_url,
        port=free_port(),
        envs_dir=shared_envs_dir,
        stop_grace_seconds=2.0,
        backend="ray",
        ray_address=ray_cluster.address,
    )
    running = RunningServer(settings)
    try:
        yield running
    finally:
        running.close()
