"""The R example as a real image: its Dockerfile (`FROM r-base:4.2.2`) built by podman through the
docker SDK on the Debian R image made here, with R's packages loading and `train` fitting iris."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
R_EXAMPLE = EXAMPLES / "r-randomforest"
IRIS = EXAMPLES / "data" / "iris" / "iris.csv"


def test_r_example_builds_from_r_base_and_trains(
    container_engine: Any, r_base: str, tmp_path: Path
) -> None:
    client = container_engine.client
    tag = f"localhost/dockyard-test/r-randomforest:{uuid.uuid4().hex[:12]}"
    # pull=False: the base must come from the engine's own storage (no registry is reachable).
    client.images.build(path=str(R_EXAMPLE), tag=tag, pull=False, rm=True)
    try:
        loaded = client.containers.run(
            tag,
            ["Rscript", "-e", "library(randomForest); library(plumber); cat('loaded')"],
            remove=True,
        )
        assert loaded.decode().strip().endswith("loaded")

        opt_ml = tmp_path / "opt-ml"
        (opt_ml / "input" / "data" / "train").mkdir(parents=True)
        (opt_ml / "input" / "config").mkdir(parents=True)
        (opt_ml / "input" / "config" / "hyperparameters.json").write_text('{"ntree": "20"}')
        shutil.copy(IRIS, opt_ml / "input" / "data" / "train" / "iris.csv")
        # `train` found on the image's PATH, as SageMaker's `docker run IMAGE train` finds it.
        logs = client.containers.run(
            tag, ["train"], volumes={str(opt_ml): {"bind": "/opt/ml", "mode": "rw"}}, remove=True
        )
        assert b"train:accuracy=" in logs
        assert (opt_ml / "model" / "model.rds").stat().st_size > 1000
        assert "ntree: 20" in (opt_ml / "output" / "data" / "summary.txt").read_text()
    finally:
        client.images.remove(tag)
