"""The docker runtime on a Ray cluster's nodes: each host a container of the node's engine
(podman's Docker-compatible service), joined to the host's routed network namespace, so two
hosts on two nodes reach each other by name as sandboxes do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dockyard.settings import Settings
from tests.backends.test_ray_training import log_text
from tests.conftest import RunningServer, free_port, model_artifacts, training_request, wait_for_job
from tests.containers import nothing_labelled
from tests.engine.test_docker_jobs import busybox_image_folder
from tests.ray_cluster import RayCluster

pytestmark = pytest.mark.slow

EXCHANGE = """#!/bin/sh
if [ "$(hostname)" = algo-1 ]; then
  # The handler reads to the end: nc alone may close on its own empty stdin first.
  nc -l -p 9000 -e sh -c 'cat > /opt/ml/model/received'
else
  for i in $(busybox seq 100); do echo "hello from $(hostname)" | nc algo-1 9000 && exit 0
  sleep 0.2; done; exit 1
fi
"""


@pytest.fixture
def ray_docker_server(
    ray_cluster: RayCluster, clean_env: Path, container_engine: Any, postgres_url: str
) -> Iterator[RunningServer]:
    settings = Settings(
        home=clean_env,
        port=free_port(),
        database_url=postgres_url,
        stop_grace_seconds=2.0,
        backend="ray",
        ray_address=ray_cluster.address,
        docker_host=container_engine.docker_host,
    )
    running = RunningServer(settings)
    try:
        yield running
    finally:
        running.close()


def test_two_containers_on_two_nodes_exchange_a_message_by_name(
    ray_docker_server: RunningServer, busybox: str, tmp_path: Path
) -> None:
    image = busybox_image_folder(tmp_path / "two", busybox, {"train": EXCHANGE})
    request = training_request(
        "docker-two", image, Tags=[{"Key": "dockyard:runtime", "Value": "docker"}]
    )
    request["ResourceConfig"]["InstanceCount"] = 2
    sagemaker = ray_docker_server.client("sagemaker")
    sagemaker.create_training_job(**request)
    described = wait_for_job(sagemaker, "docker-two", deadline_seconds=300)
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    assert model_artifacts(ray_docker_server, "docker-two")["received"] == b"hello from algo-2\n"
    text = log_text(ray_docker_server, "docker-two")
    assert "runs on node" in text and "(127.0.0.2)" in text and "(127.0.0.3)" in text
    assert nothing_labelled(ray_docker_server.settings.home)
