"""The first article's custom Python container, run unchanged through dockyard.sdk's v1 names: its
pip RUN lines build the image's own Python layer (never dockyard's environment), in order, once;
the second job starts with no pip. Needs the package index (PyPI), as a Docker build would."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import dockyard.sdk as sagemaker
from tests.conftest import RunningServer, free_port, model_artifacts

ARTICLE_IMAGE = Path(__file__).parent / "article_container"
ROLE = "arn:aws:iam::111111111111:role/SageMakerRole"


@pytest.fixture
def article_server(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningServer]:
    """A server whose environments folder starts empty: the first job builds the image layer."""
    from dockyard.settings import Settings

    settings = Settings(
        home=clean_env, port=free_port(), stop_grace_seconds=2.0, envs_dir=tmp_path / "envs"
    )
    running = RunningServer(settings)
    monkeypatch.setenv("DOCKYARD_ENDPOINT_URL", running.url)
    try:
        yield running
    finally:
        running.close()


def pip_freeze() -> str:
    return subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def downloading_seconds(described: dict[str, Any]) -> float:
    for transition in described["SecondaryStatusTransitions"]:
        if transition["Status"] == "Downloading":
            return float((transition["EndTime"] - transition["StartTime"]).total_seconds())
    raise AssertionError("no Downloading transition")


@pytest.mark.slow
def test_the_article_container_trains_unchanged(
    article_server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = tmp_path / "image"
    shutil.copytree(ARTICLE_IMAGE, image)
    data = tmp_path / "data"
    data.mkdir()
    for number in range(3):
        (data / f"cat-{number}.jpg").write_bytes(b"\xff\xd8\xff\xe0" + bytes([number]) * 64)
    (data / "labels.json").write_text(json.dumps({"cat-0.jpg": 0, "cat-1.jpg": 1, "cat-2.jpg": 0}))
    before = pip_freeze()

    session = sagemaker.Session()
    uri = session.upload_data(str(data), key_prefix="article/train")
    names = []
    for _ in range(2):
        with pytest.deprecated_call():
            estimator = sagemaker.estimator.Estimator(
                image_name=str(image),
                role=ROLE,
                train_instance_count=1,
                train_instance_type="ml.p2.xlarge",
                output_path="s3://article/output",
                sagemaker_session=session,
                hyperparameters={"prepared-train-labels": "labels.json", "epochs": 2},
            )
            train = sagemaker.session.s3_input(
                uri,
                distribution="FullyReplicated",
                content_type="image/jpeg",
                s3_data_type="S3Prefix",
            )
        estimator.fit({"train": train})
        names.append(estimator.latest_training_job.name)  # type: ignore[union-attr]

    sagemaker_api = article_server.client("sagemaker")
    first, second = (sagemaker_api.describe_training_job(TrainingJobName=n) for n in names)
    assert first["TrainingJobStatus"] == second["TrainingJobStatus"] == "Completed"

    summary = json.loads(model_artifacts(article_server, names[1])["summary.json"])
    assert summary["tz"] == "Asia/Tokyo" and summary["tzname"] == "JST"
    assert summary["cwd"] == "/opt/ml/code"  # WORKDIR
    assert summary["images"] == ["cat-0.jpg", "cat-1.jpg", "cat-2.jpg"]
    assert summary["labels"] == {"cat-0.jpg": 0, "cat-1.jpg": 1, "cat-2.jpg": 0}
    assert summary["epochs"] == 2 and summary["current_host"] == "algo-1"
    assert summary["cython_at_build"]  # cocolike built with Cython from the line before
    envs = str(article_server.settings.envs_dir)
    assert summary["pycocotools"].startswith(envs + "/image-")
    assert not summary["python"].startswith(sys.prefix)

    # dockyard's own environment is untouched: nothing was installed into it.
    assert pip_freeze() == before

    logs = capsys.readouterr().out
    built = [line for line in logs.splitlines() if "ready: built in" in line]
    reused = [line for line in logs.splitlines() if "ready: reused, no pip run" in line]
    assert len(built) == 1 and len(reused) == 1, logs
    assert logs.index(built[0]) < logs.index(reused[0])
    print(
        f"Downloading phase: first job {downloading_seconds(first):.1f} s (builds the layer), "
        f"second job {downloading_seconds(second):.1f} s (reuses it)"
    )
