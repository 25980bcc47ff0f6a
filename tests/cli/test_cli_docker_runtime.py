"""The R example as a real image on the docker runtime, as a user runs it: `dockyard train
--runtime docker` builds examples/r-randomforest's Dockerfile with the engine (FROM r-base:4.2.2,
a Debian rootfs with R, randomForest and plumber made on this machine: no outside registry), then
`dockyard deploy` serves it on two containers, `dockyard invoke` sends CSV rows and `dockyard
transform` runs a batch through two more."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.test_cli_endpoints import IRIS_ROWS, SPECIES, cli_env_for, served_by_instance
from tests.cli.test_cli_train import DOCKYARD, dockyard
from tests.cli.test_cli_transform import agreement, iris_batches, predictions
from tests.conftest import RunningServer, server_with_engine
from tests.engine.test_docker_jobs import nothing_labelled

pytestmark = pytest.mark.slow


@pytest.fixture
def docker_server(clean_env: Path, container_engine: Any, r_base: str) -> Iterator[RunningServer]:
    yield from server_with_engine(clean_env, container_engine)


def test_r_example_as_a_real_image_trains_serves_two_instances_and_answers_csv(
    docker_server: RunningServer, container_engine: Any, tmp_path: Path
) -> None:
    env = cli_env_for(docker_server)
    trained = dockyard(
        env, "train", "--image", "examples/r-randomforest", "--input", "train=examples/data/iris",
        "--hp", "target=Species", "--output", "s3://demo/out", "--name", "iris-docker",
        "--runtime", "docker",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout + trained.stderr
    log = dockyard(env, "jobs", "logs", "iris-docker").stdout
    # Built by the engine now, or by an earlier run from the same files.
    assert "localhost/dockyard-build/r-randomforest:" in log, log
    assert "150 training rows, 4 features" in log, log
    assert "saved the model to /opt/ml/model/model.rds" in log, log

    deployed = dockyard(
        env, "deploy", "--job", "iris-docker", "--name", "iris", "--instance-count", "2"
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "AllTraffic: 2 of 2 instances serving" in deployed.stdout
    sagemaker = docker_server.client("sagemaker")
    model_arn = sagemaker.describe_model(ModelName="iris")["ModelArn"]
    assert sagemaker.list_tags(ResourceArn=model_arn)["Tags"] == [
        {"Key": "dockyard:runtime", "Value": "docker"}
    ]
    # Two containers of the built image serve, each on its own network.
    label = f"dockyard.home={docker_server.settings.home}"
    serving = container_engine.client.containers.list(filters={"label": label})
    assert len(serving) == 2, [c.name for c in serving]
    assert all(
        c.image.tags[0].startswith("localhost/dockyard-build/r-randomforest:") for c in serving
    )

    rows = tmp_path / "rows.csv"
    rows.write_text(IRIS_ROWS)
    answer = dockyard(env, "invoke", "iris", "--content-type", "text/csv", "--body", f"@{rows}")
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout == SPECIES
    before = served_by_instance(docker_server, "iris")
    calls = [
        subprocess.Popen(
            [*DOCKYARD, "invoke", "iris", "--content-type", "text/csv", "--body", f"@{rows}"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(8)
    ]  # fmt: skip
    outputs = [call.communicate(timeout=120) for call in calls]
    assert [out for out, _ in outputs] == [SPECIES] * 8, outputs
    after = served_by_instance(docker_server, "iris")
    assert sum(after.values()) - sum(before.values()) == 8
    assert all(after[name] > before.get(name, 0) for name in after), (before, after)

    # Batch transform through the same kind of containers: two of them, rows in order.
    labels = iris_batches(tmp_path / "in")
    out = tmp_path / "out"
    batch = dockyard(
        env, "transform", "--job", "iris-docker", "--input", str(tmp_path / "in"),
        "--output", str(out), "--content-type", "text/csv", "--accept", "text/csv",
        "--split-type", "Line", "--strategy", "MultiRecord", "--assemble-with", "Line",
        "--instance-count", "2", "--name", "iris-docker-batch",
    )  # fmt: skip
    assert batch.returncode == 0, batch.stdout + batch.stderr
    assert "[algo-2] serving /ping and /invocations" in batch.stdout
    for number, expected in enumerate(labels):
        assert agreement(predictions(out / f"part-{number}.csv.out"), expected) > 0.9

    deleted = dockyard(env, "endpoints", "delete", "iris", "--wait")
    assert deleted.returncode == 0, deleted.stderr
    described = json.loads(dockyard(env, "jobs", "describe", "iris-docker").stdout)
    assert described["TrainingJobStatus"] == "Completed"
    assert nothing_labelled(docker_server.settings.home)
