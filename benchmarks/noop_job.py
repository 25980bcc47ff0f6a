"""A no-op training job on whichever dockyard comes first on sys.path: its image, request body and
phases, and (run as a script) the driver that times such jobs for the before/after comparison.

The driver uses only engine APIs that dockyard had before issue 8's hardening (Engine.open,
training_jobs.create/wait/describe), so the same file drives both versions through PYTHONPATH.
Protocol: `noop_job.py WORK_DIR`; it prints one JSON line once warmed up, then for every line
`N` on stdin runs N pairs (bare `/bin/true train`, job) and prints their figures as a JSON line."""

from __future__ import annotations

import datetime
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from common import timed_ms
from dockyard.contract.training_jobs import CreateTrainingJobRequest
from dockyard.engine.core import Engine
from dockyard.settings import Settings

try:  # from issue 10 on, the engine gives a typed view and the API edge makes the answer
    from dockyard.api.training_jobs import described as _answer
except ImportError:  # before, the engine gave the answer itself
    _answer = None  # type: ignore[assignment]

BUCKET = "bench"
NOOP_ENTRYPOINT = '["/bin/true"]'
BARE_ARGV = ["/bin/true", "train"]


def make_image(folder: Path, entrypoint: str) -> Path:
    """An image folder whose Dockerfile is only an ENTRYPOINT (exec form, JSON)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Dockerfile").write_text(f"FROM scratch\nENTRYPOINT {entrypoint}\n")
    return folder


def job_body(
    name: str, image: Path, *, channels: list[dict[str, Any]] | None = None, hosts: int = 1
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": "arn:aws:iam::111111111111:role/bench",
        "AlgorithmSpecification": {"TrainingImage": str(image), "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/out"},
        "ResourceConfig": {"InstanceCount": hosts, "InstanceType": "local", "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
    }
    if channels:
        body["InputDataConfig"] = channels
    return body


def describe(engine: Engine, name: str) -> dict[str, Any]:
    """DescribeTrainingJob's answer for `name`, from either version's engine."""
    found: Any = engine.training_jobs.describe(name)
    return found if isinstance(found, dict) else _answer(found).to_wire()


def phases(described: dict[str, Any], submitted: float, ended: float) -> dict[str, float]:
    """ms spent in each secondary status, from SecondaryStatusTransitions' StartTimes; the
    request's validation before CreationTime and the tail after Completed are their own phases."""
    transitions = described["SecondaryStatusTransitions"]
    out = {"(validate → CreationTime)": (_epoch(described["CreationTime"]) - submitted) * 1000}
    for current, following in itertools.pairwise(transitions):
        out[current["Status"]] = (
            _epoch(following["StartTime"]) - _epoch(current["StartTime"])
        ) * 1000
    out[f"({transitions[-1]['Status']} → returned)"] = (
        ended - _epoch(transitions[-1]["StartTime"])
    ) * 1000
    return out


def _epoch(value: float | datetime.datetime) -> float:
    return value.timestamp() if isinstance(value, datetime.datetime) else float(value)


def private_uid_base() -> int:
    """A sandbox uid range of this process's own. The hardened runtime names each sandbox's
    cgroup after its uid, and every dockyard on this shared machine starts at the same default
    base: two of them running `algo-1` at once would otherwise share (and wait on) one cgroup."""
    return 2_000_000_000 + (1 + os.getpid() % 2000) * 65536


# -- the driver --------------------------------------------------------------------------------


def driver_settings(home: Path) -> Settings:
    # Everything explicit, so DOCKYARD_* variables of the caller cannot point the run elsewhere.
    options: dict[str, Any] = {
        "home": home, "store": "local", "database_url": None, "stop_grace_seconds": 2.0,
    }  # fmt: skip
    if "local_paths" in Settings.model_fields:  # the image folder sits beside the home
        options["local_paths"] = [home.parent]
    if "sandbox_uid_base" in Settings.model_fields:  # only the hardened version has it
        options["sandbox_uid_base"] = private_uid_base()
    return Settings(**options)


def run_pairs(engine: Engine, image: Path, names: Iterator[str], count: int) -> dict[str, Any]:
    """`count` times: bare `/bin/true train`, then one no-op job (create + wait), checked."""
    bare: list[float] = []
    jobs: list[float] = []
    job_phases: list[dict[str, float]] = []
    for _ in range(count):
        bare.append(timed_ms(lambda: subprocess.run(BARE_ARGV, check=True)))
        name = next(names)
        request = CreateTrainingJobRequest.from_wire(job_body(name, image))
        submitted = time.time()
        start = time.perf_counter()
        engine.training_jobs.create(request)
        engine.training_jobs.wait(name)
        jobs.append((time.perf_counter() - start) * 1000)
        ended = time.time()
        described = describe(engine, name)
        if described["TrainingJobStatus"] != "Completed":
            raise RuntimeError(
                f"{name} ended {described['TrainingJobStatus']}: {described.get('FailureReason')}"
            )
        job_phases.append(phases(described, submitted, ended))
    return {"bare": bare, "job": jobs, "phases": job_phases}


def main() -> None:
    import dockyard

    work = Path(sys.argv[1])
    engine = Engine.open(driver_settings(work / "home"))
    try:
        image = make_image(work / "image", NOOP_ENTRYPOINT)
        names = (f"noop-{number}" for number in itertools.count(1))
        run_pairs(engine, image, names, 2)  # warm-up: first imports, first sandbox, SQLite
        print(json.dumps({"dockyard": dockyard.__file__}), flush=True)
        for line in sys.stdin:
            print(json.dumps(run_pairs(engine, image, names, int(line))), flush=True)
    finally:
        engine.close()


if __name__ == "__main__":
    main()
