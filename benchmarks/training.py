"""The training benchmarks: a no-op job's overhead, staging from the local store and from S3."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from sqlalchemy import event

from common import MIB, Samples, free_port, interleave, timed_ms
from dockyard.api.keys import face_key
from dockyard.contract.training_jobs import CreateTrainingJobRequest
from dockyard.engine.core import Engine
from dockyard.runtimes.process import SandboxFiles, bwrap_argv, find_program
from dockyard.settings import Settings
from hardening import measure_hardening
from local_servers import api_server, moto_server
from noop_job import (
    BARE_ARGV,
    BUCKET,
    NOOP_ENTRYPOINT,
    describe,
    job_body,
    make_image,
    phases,
    private_uid_base,
)
from sandbox_fixture import MOUNT_OPTIONS, Sandbox, dockyard_sandbox

VENV_BIN = Path(sys.executable).parent

NOOP_REPS = 30
STAGING_REPS = 12
COPYTREE_REPS = 5
S3_REPS = 5
HTTP_POLL_SECONDS = 0.005

CHANNEL_OBJECTS = 16
CHANNEL_OBJECT_BYTES = 64 * MIB  # 16 x 64 MiB = 1 GiB
S3_OBJECTS = 16
S3_OBJECT_BYTES = 16 * MIB  # 16 x 16 MiB = 256 MiB

OVERHEAD_TARGET_MS = 150.0
STAGING_TARGET_MS = 50.0

FLOOR_ARGV = [
    "bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
    "--unshare-pid", "--die-with-parent", "/bin/true", "train",
]  # fmt: skip
COUNT_PROGRAM = "ls /opt/ml/input/data/train 2>/dev/null | wc -l > /opt/ml/model/count.txt"


class MetadataProbe:
    """Where the engine's metadata time goes: calls into the MetadataStore (timed by wrapping
    the engine's instance, nothing in src/ changes) and the SQL they run (SQLAlchemy cursor
    events, so that part excludes the ORM's Python work and the commits)."""

    def __init__(self, engine: Engine) -> None:
        self.calls = 0
        self.call_seconds = 0.0
        self.statements = 0
        self.sql_seconds = 0.0
        self._started: dict[int, float] = {}
        self._lock = threading.Lock()
        store = engine.metadata
        for name in dir(type(store)):
            method = getattr(store, name)
            if not name.startswith("_") and callable(method) and name not in ("close", "migrate"):
                setattr(store, name, self._timed(method))
        event.listen(store.engine, "before_cursor_execute", self._before)
        event.listen(store.engine, "after_cursor_execute", self._after)

    def snapshot(self) -> tuple[int, float, int, float]:
        return self.calls, self.call_seconds * 1000, self.statements, self.sql_seconds * 1000

    def _timed(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                with self._lock:
                    self.calls += 1
                    self.call_seconds += time.perf_counter() - start

        return timed

    def _before(self, _conn: Any, cursor: Any, *_: Any) -> None:
        self._started[id(cursor)] = time.perf_counter()

    def _after(self, _conn: Any, cursor: Any, *_: Any) -> None:
        elapsed = time.perf_counter() - self._started.pop(id(cursor), time.perf_counter())
        with self._lock:
            self.statements += 1
            self.sql_seconds += elapsed


# -- fixtures: images, a server, moto ----------------------------------------------------------


# -- training jobs -----------------------------------------------------------------------------


def channel(uri: str, distribution: str) -> dict[str, Any]:
    source = {"S3DataType": "S3Prefix", "S3Uri": uri, "S3DataDistributionType": distribution}
    return {"ChannelName": "train", "DataSource": {"S3DataSource": source}}


@dataclass
class JobRun:
    name: str
    total_ms: float
    phases: dict[str, float]  # phase → ms, in the order the job went through them
    # With a probe: the job's metadata calls, their ms, SQL statements, their ms.
    metadata: tuple[float, ...] = ()


class Jobs:
    """Runs jobs on one engine under unique names and checks each ended Completed with a model."""

    def __init__(self, engine: Engine, prefix: str, probe: MetadataProbe | None = None) -> None:
        self.engine = engine
        self.prefix = prefix
        self.probe = probe
        self.count = 0

    def next_name(self) -> str:
        self.count += 1
        return f"{self.prefix}-{self.count}"

    def run(self, image: Path, **options: Any) -> JobRun:
        """In-process: create() + wait() (joins the runner thread, so no polling granularity)."""
        name = self.next_name()
        request = CreateTrainingJobRequest.from_wire(job_body(name, image, **options))
        before = self.probe.snapshot() if self.probe else ()
        submitted = time.time()
        start = time.perf_counter()
        self.engine.training_jobs.create(request)
        self.engine.training_jobs.wait(name)
        total = (time.perf_counter() - start) * 1000
        ended = time.time()
        # Taken before check(), whose describe() would count as the job's.
        after = self.probe.snapshot() if self.probe else ()
        metadata = tuple(b - a for a, b in zip(before, after, strict=True))
        return JobRun(name, total, self.check(name, submitted, ended), metadata)

    def run_http(self, sagemaker: Any, image: Path) -> JobRun:
        """Through the API with boto3: CreateTrainingJob, then DescribeTrainingJob every 5 ms."""
        name = self.next_name()
        submitted = time.time()
        start = time.perf_counter()
        sagemaker.create_training_job(**job_body(name, image))
        while sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] not in (
            "Completed",
            "Failed",
            "Stopped",
        ):
            time.sleep(HTTP_POLL_SECONDS)
        total = (time.perf_counter() - start) * 1000
        seen = time.time()
        self.engine.training_jobs.wait(name)  # the runner's last steps, outside the timing
        return JobRun(name, total, self.check(name, submitted, seen))

    def check(self, name: str, submitted: float, ended: float) -> dict[str, float]:
        described = describe(self.engine, name)
        status = described["TrainingJobStatus"]
        if status != "Completed":
            raise RuntimeError(f"{name} ended {status}: {described.get('FailureReason')}")
        self.engine.store.head(BUCKET, f"out/{name}/output/model.tar.gz")  # NoSuchKey if absent
        return phases(described, submitted, ended)

    def model_file(self, name: str, member: str) -> str:
        blob = self.engine.store.get_bytes(BUCKET, f"out/{name}/output/model.tar.gz")
        with tarfile.open(fileobj=io.BytesIO(blob)) as archive:
            extracted = archive.extractfile(member)
            assert extracted is not None
            return extracted.read().decode().strip()


# -- measurement 1: a no-op job ----------------------------------------------------------------


FLOOR = "bwrap floor (minimal sandbox)"
SANDBOX = "dockyard's sandbox alone (start + wait)"


def measure_noop(engine: Engine, api_url: str, work: Path) -> dict[str, Any]:
    image = make_image(work / "images" / "noop", NOOP_ENTRYPOINT)
    with dockyard_sandbox(engine, image, work / "sandbox") as sandbox:
        return _measure_noop(engine, api_url, image, sandbox)


def _measure_noop(engine: Engine, api_url: str, image: Path, sandbox: Sandbox) -> dict[str, Any]:
    runtime = engine.ctx.runtimes.named("process")
    spec = sandbox.spec
    jobs = Jobs(engine, "noop", MetadataProbe(engine))
    in_process: list[JobRun] = []
    http: list[JobRun] = []
    key = face_key(engine.settings)  # the pair the app made in the bench's home
    sagemaker = boto3.client(
        "sagemaker", endpoint_url=api_url, region_name="us-east-1",
        aws_access_key_id=key.access_key_id, aws_secret_access_key=key.secret_access_key,
    )  # fmt: skip

    def start_and_wait() -> None:
        code = runtime.start_sandbox(spec, lambda _stream, _line: None).wait()
        if code != 0:
            raise RuntimeError(f"dockyard's sandbox of /bin/true exited {code}")

    def job() -> float:
        in_process.append(jobs.run(image))
        return in_process[-1].total_ms

    def job_http() -> float:
        http.append(jobs.run_http(sagemaker, image))
        return http[-1].total_ms

    samples = interleave(
        {
            "bare `/bin/true train`": lambda: timed_ms(
                lambda: subprocess.run(BARE_ARGV, check=True)
            ),
            FLOOR: lambda: timed_ms(lambda: subprocess.run(FLOOR_ARGV, check=True)),
            SANDBOX: lambda: timed_ms(start_and_wait),
            "dockyard job, in-process (create + wait)": job,
            "dockyard job, HTTP API (boto3, poll 5 ms)": job_http,
            "one DescribeTrainingJob round trip (boto3)": lambda: timed_ms(
                lambda: sagemaker.describe_training_job(TrainingJobName=in_process[0].name)
            ),
            "in Python: bwrap_argv() (mount planning)": lambda: timed_ms(
                lambda: bwrap_argv(spec, SandboxFiles(), cgroup_folders=sandbox.cgroup_folders)
            ),
            "in Python: find_program() (plans again)": lambda: timed_ms(lambda: find_program(spec)),
        },
        NOOP_REPS,
    )
    # The warm-up runs are not samples.
    return {
        "samples": samples,
        "in_process": in_process[1:],
        "http": http[1:],
        "metadata": [run.metadata for run in in_process[1:]],
        "sandbox_args": len(sandbox.argv),
        "sandbox_mounts": sum(argument in MOUNT_OPTIONS for argument in sandbox.argv),
    }


# -- measurement 2: staging 1 GiB from the local store ----------------------------------------


def fill_local_store(engine: Engine, work: Path) -> Path:
    """16 x 64 MiB under s3://bench/data/; one random buffer reused (content doesn't matter)."""
    block = os.urandom(CHANNEL_OBJECT_BYTES)
    engine.store.create_bucket(BUCKET)
    for index in range(CHANNEL_OBJECTS):
        temp = work / f"part-{index:02d}.bin"
        temp.write_bytes(block)
        # move=True renames the file into the store (same file system): no second copy.
        engine.store.put_file(BUCKET, f"data/part-{index:02d}.bin", temp, move=True)
    folder = engine.store.local_prefix_dir(BUCKET, "data/")
    assert folder is not None
    return folder


def free_local_store(engine: Engine, names: list[str]) -> None:
    for index in range(CHANNEL_OBJECTS):
        engine.store.delete(BUCKET, f"data/part-{index:02d}.bin")
    # Sharded jobs hold hard links to the objects in their folders: those keep the bytes alive.
    for name in names:
        shutil.rmtree(engine.settings.jobs_dir / name, ignore_errors=True)


def measure_staging(engine: Engine, work: Path) -> dict[str, Any]:
    image = make_image(work / "images" / "count", f'["/bin/sh", "-c", "{COUNT_PROGRAM}"]')
    source = fill_local_store(engine, work)
    jobs = Jobs(engine, "staging")
    runs: dict[str, list[JobRun]] = {}
    uri = f"s3://{BUCKET}/data/"
    variants: dict[str, dict[str, Any]] = {
        "no channel, 1 host": {},
        "1 GiB FullyReplicated, 1 host": {"channels": [channel(uri, "FullyReplicated")]},
        "no channel, 2 hosts": {"hosts": 2},
        "1 GiB ShardedByS3Key, 2 hosts": {"channels": [channel(uri, "ShardedByS3Key")], "hosts": 2},
    }

    def variant(label: str, options: dict[str, Any]) -> Callable[[], float]:
        def run() -> float:
            runs.setdefault(label, []).append(jobs.run(image, **options))
            return runs[label][-1].phases["Downloading"]

        return run

    samples = interleave({label: variant(label, o) for label, o in variants.items()}, STAGING_REPS)
    counts = {
        label: jobs.model_file(runs[label][-1].name, "count.txt")
        for label in ("1 GiB FullyReplicated, 1 host", "1 GiB ShardedByS3Key, 2 hosts")
    }
    copies = Samples()
    target = work / "copytree"
    for _ in range(COPYTREE_REPS):
        copies.values.append(timed_ms(lambda: shutil.copytree(source, target)))
        shutil.rmtree(target)
    all_names = [run.name for label_runs in runs.values() for run in label_runs]
    free_local_store(engine, all_names)
    return {
        "samples": samples,
        "runs": {label: label_runs[1:] for label, label_runs in runs.items()},
        "counts": counts,
        "copytree": copies,
    }


def paired_difference(samples: dict[str, Samples], variant: str, baseline: str) -> Samples:
    """Per repetition, variant - baseline (same repetition, so drift cancels)."""
    return Samples(
        [a - b for a, b in zip(samples[variant].values, samples[baseline].values, strict=True)]
    )


# -- optional: staging from S3 (moto_server) ---------------------------------------------------


def measure_s3(work: Path) -> dict[str, Any]:
    with moto_server() as endpoint:
        s3 = boto3.client(
            "s3", endpoint_url=endpoint, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )  # fmt: skip
        settings = Settings(
            home=work / "home-s3", port=free_port(), database_url=None, store="s3",
            s3_endpoint_url=endpoint, s3_access_key_id="testing", s3_secret_access_key="testing",
            sandbox_uid_base=private_uid_base(),
        )  # fmt: skip
        engine = Engine.open(settings)
        try:
            return _measure_s3(engine, s3, endpoint, work)
        finally:
            engine.close()


def _measure_s3(engine: Engine, s3: Any, endpoint: str, work: Path) -> dict[str, Any]:
    engine.store.create_bucket(BUCKET)
    block = os.urandom(S3_OBJECT_BYTES)
    keys = [f"s3data/part-{index:02d}.bin" for index in range(S3_OBJECTS)]
    for key in keys:
        s3.put_object(Bucket=BUCKET, Key=key, Body=block)
    image = make_image(work / "images" / "s3-noop", '["/bin/true"]')
    jobs = Jobs(engine, "s3")
    options = {"channels": [channel(f"s3://{BUCKET}/s3data/", "FullyReplicated")]}
    cache = engine.settings.cache_dir
    aws_env = {
        **os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }  # fmt: skip

    def cold_job() -> float:
        shutil.rmtree(cache, ignore_errors=True)  # the content cache: make it download
        return jobs.run(image, **options).phases["Downloading"]

    def warm_job() -> float:
        """The same data again, then everything both jobs staged is removed (untimed): files
        left behind make later writes slower, which would penalise whatever runs next."""
        staged = jobs.run(image, **options)
        for number in (jobs.count - 1, jobs.count):
            shutil.rmtree(engine.settings.jobs_dir / f"{jobs.prefix}-{number}", ignore_errors=True)
        shutil.rmtree(cache, ignore_errors=True)
        return staged.phases["Downloading"]

    def fresh_dir(tag: str) -> Path:
        target = work / f"s3-{tag}"
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir()
        return target

    def boto3_download() -> float:
        target = fresh_dir("boto3")
        elapsed = timed_ms(
            lambda: [s3.download_file(BUCKET, key, str(target / Path(key).name)) for key in keys]
        )
        shutil.rmtree(target)
        return elapsed

    def aws_cli() -> float:
        target = fresh_dir("cli")
        argv = [str(VENV_BIN / "aws"), "s3", "cp", "--recursive", "--quiet",
                f"s3://{BUCKET}/s3data/", str(target), "--endpoint-url", endpoint]  # fmt: skip
        elapsed = timed_ms(lambda: subprocess.run(argv, env=aws_env, check=True))
        shutil.rmtree(target)
        return elapsed

    samples = interleave(
        {
            "dockyard job, cold cache (Downloading phase)": cold_job,
            "dockyard job, same data again (Downloading phase)": warm_job,
            "boto3 download_file, object after object": boto3_download,
            "aws s3 cp --recursive (CLI, includes its start-up)": aws_cli,
        },
        S3_REPS,
    )
    return {"samples": samples, "bytes": S3_OBJECTS * S3_OBJECT_BYTES}


def measure_training(work: Path) -> dict[str, Any]:
    """All four measurements; the failure of an optional one (before/after needs git and the old
    commit, S3 needs moto_server) is recorded, not raised."""
    work.mkdir(parents=True, exist_ok=True)
    # Everything explicit, so DOCKYARD_* variables of the caller cannot point the run elsewhere.
    settings = Settings(
        home=work / "home", port=free_port(), store="local", database_url=None,
        stop_grace_seconds=2.0, sandbox_uid_base=private_uid_base(),
    )  # fmt: skip
    engine = Engine.open(settings)
    hardening, hardening_error = None, None
    try:
        with api_server(engine) as url:
            print("training 1/4: no-op job …", flush=True)
            noop = measure_noop(engine, url, work)
        print("training 2/4: before and after hardening, sandbox setup …", flush=True)
        try:
            hardening = measure_hardening(engine, work / "hardening")
        except Exception as exc:
            hardening_error = f"{type(exc).__name__}: {exc}"
        print("training 3/4: staging 1 GiB …", flush=True)
        staging = measure_staging(engine, work)
    finally:
        engine.close()
    print("training 4/4: staging from S3 (moto_server) …", flush=True)
    s3, s3_error = None, None
    try:
        s3 = measure_s3(work)
    except Exception as exc:  # optional: a failure here must not lose the other results
        s3_error = f"{type(exc).__name__}: {exc}"
    return {
        "noop": noop, "hardening": hardening, "hardening_error": hardening_error,
        "staging": staging, "s3": s3, "s3_error": s3_error,
    }  # fmt: skip
