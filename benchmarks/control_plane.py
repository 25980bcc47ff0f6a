"""The control plane under load, through the real server and boto3: DescribeTrainingJob at a steady
200 req/s with 1,000 and then 10,000 training jobs stored, and ListTrainingJobs over 10,000 jobs.

Jobs are stored through MetadataStore (the engine's own calls, as a finished job leaves them:
Completed, five transitions) before the server starts; the server then reads them as it would
jobs it ran. Describe runs open-loop: request i is due at start + i / rate and its latency is
counted from when it was due, so a server that falls behind shows it (no coordinated omission)."""

from __future__ import annotations

import multiprocessing
import random
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from common import Samples, free_port
from dockyard.contract.training_jobs import (
    CreateTrainingJobRequest,
    SecondaryStatus,
    TrainingJobState,
)
from dockyard.settings import Settings
from dockyard.storage.metadata import MetadataStore, Transition
from dockyard.storage.records import TrainingJobRecord
from serving_servers import _env, server_process

RATE = 200  # requests per second
DESCRIBE_SECONDS = 20.0
CLIENT_PROCESSES = 4
THREADS_PER_PROCESS = 2
STORED = (1_000, 10_000)
PAGE = 100  # ListTrainingJobs MaxResults
SECONDARY = ("Starting", "Downloading", "Training", "Uploading", "Completed")


@dataclass
class ControlPlaneResults:
    describe: dict[int, Samples]  # jobs stored -> latency ms
    achieved_rate: dict[int, float]
    errors: dict[int, int]
    first_page: Samples  # ListTrainingJobs, newest first, one page of PAGE
    all_pages: Samples  # paging through every job
    pages: int
    seed_seconds: float


def request_body(name: str) -> CreateTrainingJobRequest:
    wire = {
        "TrainingJobName": name,
        "RoleArn": "arn:aws:iam::111111111111:role/bench",
        "AlgorithmSpecification": {"TrainingImage": "/bench/image", "TrainingInputMode": "File"},
        "HyperParameters": {"epochs": "10", "lr": "0.01", "target": "Species"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://bench/{name}/train"}
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": "s3://bench/out"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
    }
    return CreateTrainingJobRequest.from_wire(wire)


def seed(settings: Settings, start: int, count: int) -> list[str]:
    """`count` Completed jobs named bench-<n>, one second of creation time apart."""
    metadata = MetadataStore(settings.metadata_url)
    metadata.migrate()
    names = []
    try:
        base = time.time() - 10 * 86400
        for number in range(start, start + count):
            name = f"bench-{number:05d}"
            at = base + number
            metadata.insert_training_job(
                TrainingJobRecord(
                    name=name,
                    arn=f"arn:aws:sagemaker:us-east-1:000000000000:training-job/{name}",
                    creation_time=at,
                    state=TrainingJobState(
                        secondary_status=SecondaryStatus.STARTING,
                        model_artifacts=f"s3://bench/out/{name}/output/model.tar.gz",
                    ),
                    status="InProgress",
                    last_modified_time=at,
                    request=request_body(name),
                ),
                Transition("Starting", at, None, "Starting the training job"),
            )
            for step, status in enumerate(SECONDARY[1:], start=1):
                primary = "Completed" if status == "Completed" else "InProgress"
                metadata.transition(
                    name,
                    status,
                    at + step,
                    f"{status} phase",
                    lambda _current, primary=primary: primary,
                    fields={"training_end_time": at + step} if primary == "Completed" else None,
                    final=primary == "Completed",
                )
            names.append(name)
    finally:
        metadata.close()
    return names


def describe_at_rate(
    url: str, key: tuple[str, str], names: list[str]
) -> tuple[Samples, float, int]:
    """Open loop at RATE from CLIENT_PROCESSES processes (one Python's GIL would be the
    bottleneck, not the server): (latency from each request's due time, achieved rate, errors).
    The clock starts once every process has made and warmed its clients."""
    total = int(RATE * DESCRIBE_SECONDS)
    rng = random.Random(7)
    picks = [rng.choice(names) for _ in range(total)]
    context = multiprocessing.get_context("spawn")
    ready, go = context.Barrier(CLIENT_PROCESSES + 1), context.Barrier(CLIENT_PROCESSES + 1)
    start = context.Value("d", 0.0)
    results = context.Queue()
    workers = [
        context.Process(
            target=_describe_share, args=(url, key, picks, worker, ready, go, start, results)
        )
        for worker in range(CLIENT_PROCESSES)
    ]
    for process in workers:
        process.start()
    ready.wait(timeout=120)
    start.value = time.time() + 0.2
    go.wait(timeout=120)
    shares = [results.get(timeout=DESCRIBE_SECONDS + 300) for _ in workers]
    for process in workers:
        process.join(timeout=60)
    latencies = [value for share in shares for value in share[0]]
    errors = sum(share[1] for share in shares)
    ended = max(share[2] for share in shares)
    return Samples(latencies), len(latencies) / (ended - start.value), errors


def _describe_share(
    url: str,
    key: tuple[str, str],
    picks: list[str],
    worker: int,
    ready: Any,
    go: Any,
    start_at: Any,
    results: Any,
) -> None:
    """Requests worker, worker + CLIENT_PROCESSES, ... each at its due time, on threads."""
    indexes = iter(range(worker, len(picks), CLIENT_PROCESSES))
    lock = threading.Lock()
    latencies: list[float] = []
    errors = [0]
    clients = [_client(url, key) for _ in range(THREADS_PER_PROCESS)]
    for client in clients:
        client.describe_training_job(TrainingJobName=picks[0])  # connections and model loaded
    ready.wait()
    go.wait()
    start = start_at.value

    def run(client: Any) -> None:
        while True:
            with lock:
                index = next(indexes, None)
            if index is None:
                return
            due = start + index / RATE
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            try:
                client.describe_training_job(TrainingJobName=picks[index])
            except Exception:
                with lock:
                    errors[0] += 1
                continue
            elapsed = (time.time() - due) * 1000
            with lock:
                latencies.append(elapsed)

    threads = [threading.Thread(target=run, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results.put((latencies, errors[0], time.time()))


def _client(url: str, key: tuple[str, str]) -> Any:
    return boto3.client(
        "sagemaker", endpoint_url=url, region_name="us-east-1",
        aws_access_key_id=key[0], aws_secret_access_key=key[1],
        config=Config(retries={"max_attempts": 1}, max_pool_connections=4),
    )  # fmt: skip


def list_all(client: Any) -> int:
    pages, token = 0, None
    while True:
        extra = {"NextToken": token} if token else {}
        page = client.list_training_jobs(MaxResults=PAGE, SortOrder="Descending", **extra)
        pages += 1
        token = page.get("NextToken")
        if not token:
            return pages


def measure_control_plane(work: Path) -> ControlPlaneResults:
    work.mkdir(parents=True, exist_ok=True)
    home = work / "dockyard-home"
    settings = Settings(home=home)
    port, key_id, secret = free_port(), "BENCH", secrets.token_urlsafe(30)
    env = _env(
        DOCKYARD_HOME=str(home),
        DOCKYARD_HOST="127.0.0.1",
        DOCKYARD_PORT=str(port),
        DOCKYARD_ACCESS_KEY_ID=key_id,
        DOCKYARD_SECRET_ACCESS_KEY=secret,
    )
    url = f"http://127.0.0.1:{port}"

    def client() -> Any:
        return _client(url, (key_id, secret))

    describe, rates, errors = {}, {}, {}
    names: list[str] = []
    seeded = time.perf_counter()
    first_page = all_pages = Samples()
    pages = 0
    for stored in STORED:
        names += seed(settings, len(names), stored - len(names))
        print(f"control plane: {stored} jobs stored", file=sys.stderr)
        argv = [sys.executable, "-m", "dockyard.api.server"]
        with server_process(argv, env, work / f"server-{stored}.log", f"{url}/healthz"):
            warm = client()
            for name in names[:50]:
                warm.describe_training_job(TrainingJobName=name)
            describe[stored], rates[stored], errors[stored] = describe_at_rate(
                url, (key_id, secret), names
            )
            if stored == STORED[-1]:
                lister = client()
                first_page = Samples()
                for _ in range(30):
                    started = time.perf_counter()
                    lister.list_training_jobs(MaxResults=PAGE, SortOrder="Descending")
                    first_page.values.append((time.perf_counter() - started) * 1000)
                all_pages = Samples()
                for _ in range(3):
                    started = time.perf_counter()
                    pages = list_all(lister)
                    all_pages.values.append((time.perf_counter() - started) * 1000)
    return ControlPlaneResults(
        describe, rates, errors, first_page, all_pages, pages, time.perf_counter() - seeded
    )


def control_plane_ratios(results: ControlPlaneResults) -> list[str]:
    lines = []
    for stored, samples in results.describe.items():
        p99 = samples.quantile_at(0.99)
        verdict = "PASS" if p99 < 20 else "FAIL"
        lines.append(
            f"- **DescribeTrainingJob at {RATE} req/s with {stored:,} jobs stored: p50 "
            f"{samples.median:.1f} ms, p99 {p99:.1f} ms (target p99 < 20 ms): {verdict}**; "
            f"achieved {results.achieved_rate[stored]:.0f} req/s over {len(samples.values)} "
            f"requests, {results.errors[stored]} errors"
        )
    lines.append(
        f"- ListTrainingJobs over {STORED[-1]:,} jobs: one page of {PAGE}, newest first, p50 "
        f"{results.first_page.median:.1f} ms ({results.first_page.spread()}); every page "
        f"({results.pages} pages, NextToken) {results.all_pages.median / 1000:.2f} s "
        f"= {results.all_pages.median / results.pages:.1f} ms a page"
    )
    return lines


def control_plane_section(results: ControlPlaneResults) -> list[str]:
    return [
        "## Control plane",
        "",
        f"`python -m dockyard.api.server` (SQLite metadata), boto3 clients in {CLIENT_PROCESSES} "
        f"processes of {THREADS_PER_PROCESS} threads, sharing the machine's cores with the "
        "server. Describe requests "
        f"go open-loop at {RATE} req/s for {DESCRIBE_SECONDS:g} s to jobs picked at random, "
        "latency counted from each request's due time. Jobs are stored beforehand as finished "
        f"jobs (five transitions each), in {results.seed_seconds:.0f} s for the whole run.",
        "",
        "| variant | median ms | p10 | p90 | min | max | N |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(
            samples.row(f"DescribeTrainingJob, {stored:,} jobs stored")
            for stored, samples in results.describe.items()
        ),
        results.first_page.row(f"ListTrainingJobs, one page of {PAGE} of {STORED[-1]:,}"),
        results.all_pages.row(f"ListTrainingJobs, all {results.pages} pages"),
        "",
    ]
