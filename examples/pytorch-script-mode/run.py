"""Train the PyTorch script-mode example with SageMaker SDK notebook code, on two hosts.

The data is generated here (two interleaved half-moons, no download). The only change from a
SageMaker notebook is the import line. Run it with
`.venv/bin/python examples/pytorch-script-mode/run.py`.
"""

import math
import random
import tempfile
from pathlib import Path

import dockyard.sdk as sagemaker
from dockyard.sdk.pytorch import PyTorch

HERE = Path(__file__).resolve().parent


def make_data(folder: Path, rows: int = 2000) -> None:
    rng = random.Random(7)
    with open(folder / "moons.csv", "w") as out:
        out.write("x,y,label\n")
        for _ in range(rows):
            label = rng.randint(0, 1)
            angle = rng.uniform(0, math.pi)
            x = math.cos(angle) + (1.0 if label else 0.0) + rng.gauss(0, 0.1)
            y = math.sin(angle) * (-1 if label else 1) + (0.5 if label else 0.0) + rng.gauss(0, 0.1)
            out.write(f"{x:.4f},{y:.4f},{label}\n")


session = sagemaker.Session()
with tempfile.TemporaryDirectory() as folder:
    make_data(Path(folder))
    train = session.upload_data(folder, key_prefix="pytorch-example/moons")

estimator = PyTorch(
    entry_point="train.py",
    source_dir=str(HERE / "src"),
    framework_version="2.13",
    py_version="py311",
    role=sagemaker.get_execution_role(),
    instance_count=2,
    instance_type="ml.m5.large",
    hyperparameters={"epochs": 30, "lr": 0.5},
    distribution={"torch_distributed": {"enabled": True}},
    metric_definitions=[{"Name": "accuracy", "Regex": "accuracy=([0-9.]+);"}],
)
estimator.fit({"training": train})
print("model:", estimator.model_data)
