"""The cluster benchmark: the ray backend on a two-node Ray cluster of this machine beside the
local backend, in one run: a no-op training job, an endpoint's start, and invocations/s through
the router to one instance here (local), on the head node and on the other node (ray)."""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import shutil
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import serving_env
from cluster_nodes import (
    HEAD_IP,
    WORKER_IP,
    BareActorRun,
    bare_actor_run,
    holding_node,
    two_node_cluster,
)
from cluster_probe import PlacementProbe, Run, timed_run
from common import free_port, interleave
from dockyard.api.keys import face_key
from dockyard.backends.base import PlacementRequest
from dockyard.backends.ray_backend import RayBackend
from dockyard.contract.instance_types import instance_type
from dockyard.contract.training_jobs import CreateTrainingJobRequest
from dockyard.engine.core import Engine
from dockyard.settings import Settings
from endpoint_runs import Endpoints
from local_servers import api_server
from noop_job import BUCKET, NOOP_ENTRYPOINT, describe, job_body, make_image, private_uid_base
from serving import CSV_BODY, LATENCY_CONNECTIONS, WrkRun, run_wrk, wrk_command
from serving_servers import APPS, CSV, Target, post, presigned

JOB_REPS = 7
ENDPOINT_REPS = 7
ROUNDS = 5
ROUND_SECONDS = 8.0
WARMUP_SECONDS = 3.0
LATENCY_SECONDS = 3.0
# What a user would name; one such host (2 vCPU, 8 GiB) fills a node of the cluster.
INSTANCE_TYPE = "ml.m5.large"
# The hosts' addresses: a range of the run's own, so the tests' Ray servers on this machine
# (which take /24s of the default range from its lowest up) never collide with it.
HOSTS_CIDR = "10.250.0.0/16"
SERVING_WORKERS = 2  # as the serving benchmark's router endpoint
# The framework environment of the echo endpoint (dockyard/python:3.11), built once per
# machine and shared with the serving benchmark's router endpoint.
ENVS_DIR = serving_env.BENCH_VENV / "dockyard-envs"
# `serve` of the endpoint-start image: busybox's httpd answering GET /ping with a file.
SERVE = "#!/bin/sh\nexec busybox httpd -f -p 8080 -h /opt/program/www\n"

LOCAL, RAY = "local backend", "ray backend"
RAY_FLOOR = "Ray alone: placement group, trivial actor, one call, both removed"
ROUTER_LOCAL = "(a) local backend: instance in a netns of this machine"
ROUTER_HEAD = f"(b) ray backend: instance on the head node ({HEAD_IP})"
ROUTER_WORKER = f"(c) ray backend: instance on the other node ({WORKER_IP})"


# -- the engines, the images -------------------------------------------------------------------


def engine_settings(
    work: Path, backend: Literal["local", "ray"], ray_address: str | None = None
) -> Settings:
    """Everything explicit, so DOCKYARD_* variables of the caller cannot point the run elsewhere.
    Each engine gets its own half of this process's sandbox uid range."""
    offset = 0 if backend == "local" else 32_768
    return Settings(
        home=work / f"home-{backend}", port=free_port(), store="local", database_url=None,
        stop_grace_seconds=2.0, sandbox_uid_base=private_uid_base() + offset,
        envs_dir=ENVS_DIR, local_paths=[work], backend=backend, ray_address=ray_address,
        hosts_cidr=HOSTS_CIDR,
    )  # fmt: skip


@contextlib.contextmanager
def opened(settings: Settings) -> Iterator[Engine]:
    engine = Engine.open(settings)
    try:
        yield engine
    finally:
        engine.close()


@dataclass(frozen=True)
class Images:
    noop: Path  # ENTRYPOINT ["/bin/true"]: `train` exits 0 at once
    serve: Path  # busybox httpd answering /ping
    echo: dict[str, Any]  # PrimaryContainer of the echo model on dockyard/python:3.11


def make_images(work: Path) -> Images:
    serve = work / "serve"
    (serve / "www").mkdir(parents=True)
    (serve / "www" / "ping").write_text("")
    (serve / "serve.sh").write_text(SERVE)
    (serve / "Dockerfile").write_text(
        "FROM scratch\nCOPY www /opt/program/www\nCOPY serve.sh /opt/program/serve.sh\n"
        'ENTRYPOINT ["/bin/sh", "/opt/program/serve.sh"]\n'
    )
    # The serving benchmark's trivial model (a): handlers that return their input.
    code = work / "echo" / "code"
    code.mkdir(parents=True)
    shutil.copy(APPS / "echo_inference.py", code / "inference.py")
    tarball = work / "echo" / "model.tar.gz"
    with tarfile.open(tarball, "w:gz"):
        pass  # the model is its code: nothing else to unpack into /opt/ml/model
    echo = {
        "Image": "dockyard/python:3.11",
        "ModelDataUrl": tarball.as_uri(),
        "Environment": {
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": code.as_uri(),
            "SAGEMAKER_MODEL_SERVER_WORKERS": str(SERVING_WORKERS),
        },
    }
    return Images(make_image(work / "noop", NOOP_ENTRYPOINT), serve, echo)


# -- 1. no-op jobs -----------------------------------------------------------------------------


class Jobs:
    """No-op jobs on one engine under unique names, each checked Completed with its
    model.tar.gz stored."""

    def __init__(self, engine: Engine, probe: PlacementProbe, image: Path) -> None:
        self.engine = engine
        self.probe = probe
        self.image = image
        self.count = 0

    def run(self) -> Run:
        self.count += 1
        name = f"noop-{self.engine.settings.backend}-{self.count}"
        body = job_body(name, self.image)
        body["ResourceConfig"]["InstanceType"] = INSTANCE_TYPE
        request = CreateTrainingJobRequest.from_wire(body)

        def create_and_wait() -> None:
            self.engine.training_jobs.create(request)
            self.engine.training_jobs.wait(name)

        run = timed_run(self.probe, create_and_wait)
        described = describe(self.engine, name)
        if described["TrainingJobStatus"] != "Completed":
            raise RuntimeError(
                f"{name} ended {described['TrainingJobStatus']}: {described.get('FailureReason')}"
            )
        self.engine.store.head(BUCKET, f"out/{name}/output/model.tar.gz")
        return run


def kept(runs: list[Run], run: Run) -> float:
    runs.append(run)
    return run.total_ms


def host_bundle(engine: Engine) -> dict[str, float]:
    """What the ray backend holds for one INSTANCE_TYPE host."""
    backend = engine.ctx.backend
    assert isinstance(backend, RayBackend)
    request = PlacementRequest(
        owner="bench", hosts=["algo-1"], instance=instance_type(INSTANCE_TYPE), runtime="process"
    )
    return backend.bundle(request)


def measure_jobs(engines: dict[str, Engine], probe: PlacementProbe, image: Path) -> dict[str, Any]:
    """Local, ray and Ray's own floor (bare_actor_run) in turn, JOB_REPS each after a warm-up."""
    jobs = {label: Jobs(engine, probe, image) for label, engine in engines.items()}
    runs: dict[str, list[Run]] = {label: [] for label in engines}
    bundle = host_bundle(engines[RAY])
    floor: list[BareActorRun] = []

    def bare() -> float:
        floor.append(bare_actor_run(bundle))
        return floor[-1].total_ms

    variants = {label: _keeping(runs[label], jobs[label].run) for label in engines}
    samples = interleave({**variants, RAY_FLOOR: bare}, JOB_REPS)
    # The first of each is the warm-up: not among the runs the breakdown is made of.
    return {
        "samples": samples,
        "runs": {label: found[1:] for label, found in runs.items()},
        "floor": floor[1:],
        "bundle": bundle,
    }


def _keeping(runs: list[Run], make: Callable[[], Run]) -> Callable[[], float]:
    return lambda: kept(runs, make())


# -- 2. endpoint starts ------------------------------------------------------------------------


def endpoint_start(endpoints: Endpoints, probe: PlacementProbe, config: str) -> Run:
    """CreateEndpoint → InService of a new endpoint of `config`; deleted after, untimed."""
    made: list[str] = []

    def create() -> float:
        name, elapsed = endpoints.create(config)
        made.append(name)
        return elapsed

    try:
        return timed_run(probe, create)
    finally:
        for name in made:
            endpoints.delete(name)


def measure_endpoint_starts(
    engines: dict[str, Engine], probe: PlacementProbe, image: Path
) -> dict[str, Any]:
    endpoints = {label: Endpoints(engine) for label, engine in engines.items()}
    configs = {
        label: found.model("serve", {"Image": str(image)}, INSTANCE_TYPE)
        for label, found in endpoints.items()
    }
    runs: dict[str, list[Run]] = {label: [] for label in engines}
    samples = interleave(
        {
            label: _keeping(runs[label], _starter(endpoints[label], probe, configs[label]))
            for label in engines
        },
        ENDPOINT_REPS,
    )
    return {"samples": samples, "runs": {label: found[1:] for label, found in runs.items()}}


def _starter(endpoints: Endpoints, probe: PlacementProbe, config: str) -> Callable[[], Run]:
    return lambda: endpoint_start(endpoints, probe, config)


# -- 3. invocations through the router ---------------------------------------------------------


@dataclass
class RouterResult:
    """One endpoint under wrk: its node, its runs at CONNECTIONS and at concurrency 1."""

    node: str
    runs: list[WrkRun] = field(default_factory=list)
    latency_runs: list[WrkRun] = field(default_factory=list)


def echo_target(engine: Engine, url: str, name: str, body: Path) -> Target:
    """wrk's target: the router's InvokeEndpoint path of `name`, presigned with the engine's
    key (as the serving benchmark signs it), checked to answer the body back."""
    key = face_key(engine.settings)
    invocations = presigned(
        f"{url}/endpoints/{name}/invocations",
        body.read_bytes(),
        key.access_key_id,
        key.secret_access_key,
    )
    # The CPU the runs report is that of this process and everything it started: the router,
    # the instances, the Ray cluster.
    target = Target(invocations, body, CSV, CSV, os.getpid())
    status, answer = post(target)
    if status != 200 or answer != CSV_BODY:
        raise RuntimeError(f"endpoint {name} answered {status} {answer[:200]!r}")
    return target


def placed_node(probe: PlacementProbe) -> str:
    nodes = [call.node for call in probe.take() if call.node is not None]
    if len(nodes) != 1:
        raise RuntimeError(f"expected one instance placed, saw nodes {nodes}")
    return nodes[0]


@dataclass(frozen=True)
class EchoEndpoint:
    backend: str  # LOCAL or RAY: the engine that serves it
    name: str
    node: str  # the address of the node its instance went to


@contextlib.contextmanager
def echo_endpoints(
    engines: dict[str, Engine], probe: PlacementProbe, container: dict[str, Any]
) -> Iterator[dict[str, EchoEndpoint]]:
    """The three endpoints, by label. The ray backend's first goes to the head node while the
    other node is held, its second to the other node (the head is full then: one ml.m5.large
    fills a node). Deleted at the end, also on error."""
    endpoints = {label: Endpoints(engine) for label, engine in engines.items()}
    for found in endpoints.values():
        found.model("echo", container, INSTANCE_TYPE)
    made: dict[str, EchoEndpoint] = {}

    def create(label: str, backend: str, name: str) -> None:
        probe.take()
        endpoints[backend].create("echo", name)
        made[label] = EchoEndpoint(backend, name, "?")  # deleted at the end even if not placed
        made[label] = EchoEndpoint(backend, name, placed_node(probe))

    try:
        print("cluster 3/3: echo endpoint on the local backend …", flush=True)
        create(ROUTER_LOCAL, LOCAL, "echo-local")
        print(f"cluster 3/3: echo endpoints on {HEAD_IP} and {WORKER_IP} …", flush=True)
        with holding_node(WORKER_IP):
            create(ROUTER_HEAD, RAY, "echo-head")
        create(ROUTER_WORKER, RAY, "echo-worker")
        for label, ip in ((ROUTER_HEAD, HEAD_IP), (ROUTER_WORKER, WORKER_IP)):
            if made[label].node != ip:
                raise RuntimeError(f"{label}: its instance went to {made[label].node}, not {ip}")
        yield made
    finally:
        for endpoint in made.values():
            with contextlib.suppress(Exception):  # the engine's close stops what is left
                endpoints[endpoint.backend].delete(endpoint.name)


def measure_router(
    engines: dict[str, Engine], probe: PlacementProbe, container: dict[str, Any], work: Path
) -> dict[str, RouterResult]:
    """The three endpoints up together, each behind its engine's router on a loopback port;
    after a warm-up, ROUNDS rounds of one wrk run each in turn, then the same at concurrency 1."""
    body = work / "body.csv"
    body.write_bytes(CSV_BODY)
    with contextlib.ExitStack() as stack:
        urls = {label: stack.enter_context(api_server(engine)) for label, engine in engines.items()}
        endpoints = stack.enter_context(echo_endpoints(engines, probe, container))
        targets = {
            label: echo_target(engines[found.backend], urls[found.backend], found.name, body)
            for label, found in endpoints.items()
        }
        results = {label: RouterResult(found.node) for label, found in endpoints.items()}
        for target in targets.values():
            run_wrk(target, WARMUP_SECONDS)
        for number in range(ROUNDS):
            print(f"cluster 3/3: wrk round {number + 1}/{ROUNDS} …", flush=True)
            for label, target in targets.items():
                results[label].runs.append(run_wrk(target, ROUND_SECONDS))
        for _ in range(ROUNDS):
            for label, target in targets.items():
                latency = run_wrk(target, LATENCY_SECONDS, LATENCY_CONNECTIONS)
                results[label].latency_runs.append(latency)
    return results


# -- all of it ---------------------------------------------------------------------------------


def measure_cluster(work: Path) -> dict[str, Any]:
    """Start the cluster and both engines, measure the three parts in turn, and stop everything
    (endpoints, servers, engines, the cluster) at the end, also on error."""
    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    work.mkdir(parents=True, exist_ok=True)
    missing = serving_env.ensure_program("wrk", work / "setup.log")
    if missing is not None:
        raise RuntimeError(f"the cluster benchmark needs wrk: {missing}")
    images = make_images(work)
    probe = PlacementProbe()
    print("cluster: starting a two-node Ray cluster …", flush=True)
    with two_node_cluster() as nodes, contextlib.ExitStack() as stack:
        local = stack.enter_context(opened(engine_settings(work, "local")))
        opening = time.perf_counter()
        ray = stack.enter_context(opened(engine_settings(work, "ray", nodes.address)))
        connect_ms = (time.perf_counter() - opening) * 1000
        engines = {LOCAL: local, RAY: ray}
        stack.enter_context(probe.on())
        print("cluster 1/3: no-op jobs …", flush=True)
        jobs = measure_jobs(engines, probe, images.noop)
        print("cluster 2/3: endpoint starts …", flush=True)
        starts = measure_endpoint_starts(engines, probe, images.serve)
        router = measure_router(engines, probe, images.echo, work)
    return {
        "ray_version": importlib.metadata.version("ray"),
        "load": (load_before, os.getloadavg()[0]),
        "cluster_ms": nodes.started_ms,
        "connect_ms": connect_ms,
        "jobs": jobs,
        "starts": starts,
        "router": router,
        "wrk": wrk_command(ROUND_SECONDS),
        # What the text says was run: read when the report is written, not from the constants.
        "plan": {
            "job_reps": JOB_REPS,
            "endpoint_reps": ENDPOINT_REPS,
            "rounds": ROUNDS,
            "round_seconds": ROUND_SECONDS,
            "latency_seconds": LATENCY_SECONDS,
            "warmup_seconds": WARMUP_SECONDS,
        },
        "elapsed": time.perf_counter() - started,
    }
