"""The containers benchmark: a no-op job and an endpoint start on the docker runtime beside a bare
`podman run` of the same busybox image (the floor) and the process runtime's, interleaved."""

from __future__ import annotations

import contextlib
import http.client
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from common import REPO, free_port, interleave, timed_ms
from dockyard.api.keys import face_key
from dockyard.contract.training_jobs import CreateTrainingJobRequest
from dockyard.engine.core import Engine
from dockyard.runtimes.docker_runtime import _TRANSIENT, DockerRuntime
from dockyard.settings import Settings
from endpoint_runs import Endpoints
from local_servers import api_server
from noop_job import BUCKET, describe, job_body, make_image, phases, private_uid_base

JOB_REPS = 15
ENDPOINT_REPS = 10
POLL_SECONDS = 0.005
OVERHEAD_TARGET = 0.2  # times the bare run, from issue 11

# `serve` of both runtimes: busybox's httpd answering GET /ping with the file www/ping (200).
SERVE = "#!/bin/sh\nexec busybox httpd -f -p 8080 -h /opt/program/www\n"

BARE_CLI = "bare `podman run --rm IMAGE train` (CLI)"
BARE_SDK = "bare create + start + wait + remove (docker SDK, service)"
DOCKER_JOB = "docker runtime job, in-process (create + wait)"
DOCKER_HTTP = "docker runtime job, HTTP API (boto3, poll 5 ms)"
PROCESS_JOB = "process runtime job, in-process (create + wait)"
BARE_SERVE = "bare `podman run -d IMAGE serve` → /ping answers (CLI)"
DOCKER_ENDPOINT = "docker runtime endpoint, CreateEndpoint → InService"
PROCESS_ENDPOINT = "process runtime endpoint, CreateEndpoint → InService"


# -- the engine, the images --------------------------------------------------------------------


@contextlib.contextmanager
def container_engine(work: Path) -> Iterator[Any]:
    """The engine DOCKER_HOST names, else podman's service on a socket of this run's own, as the
    tests start it (tests/containers.py)."""
    sys.path.insert(0, str(REPO))
    from tests.containers import CONTAINERS_CONF, engine_at, start_service

    os.environ.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    if os.environ.get("DOCKER_HOST"):
        yield engine_at(os.environ["DOCKER_HOST"])
        return
    folder = work / "podman"
    folder.mkdir(parents=True)
    service = start_service(folder)
    try:
        yield next(service)
    finally:
        service.close()  # type: ignore[attr-defined]


@dataclass
class Images:
    """The images of one run: tagged with a run id of their own (podman's storage is shared),
    removed at the end."""

    noop: str  # ENTRYPOINT ["/bin/true"]: `train` exits 0 at once
    serve: str  # `serve` on its PATH: busybox httpd on 8080
    process_noop: Path
    process_serve: Path


@contextlib.contextmanager
def bench_images(client: Any, work: Path) -> Iterator[Images]:
    from tests.containers import busybox_image

    base = busybox_image(client, work / "busybox")
    run = uuid.uuid4().hex[:12]
    noop_folder = make_image(work / "docker-noop", '["/bin/true"]')
    noop_folder.joinpath("Dockerfile").write_text(f'FROM {base}\nENTRYPOINT ["/bin/true"]\n')
    serve_folder = work / "docker-serve"
    (serve_folder / "www").mkdir(parents=True)
    (serve_folder / "www" / "ping").write_text("")
    (serve_folder / "serve").write_text(SERVE)
    (serve_folder / "serve").chmod(0o755)
    (serve_folder / "Dockerfile").write_text(
        f"FROM {base}\nCOPY www /opt/program/www\nCOPY serve /bin/serve\n"
    )
    # The process runtime's: its base is this machine whatever FROM says; busybox-static's
    # /bin/busybox is the same httpd.
    process_serve = work / "process-serve"
    (process_serve / "www").mkdir(parents=True)
    (process_serve / "www" / "ping").write_text("")
    (process_serve / "serve.sh").write_text(SERVE)
    (process_serve / "Dockerfile").write_text(
        "FROM scratch\nCOPY www /opt/program/www\nCOPY serve.sh /opt/program/serve.sh\n"
        'ENTRYPOINT ["/bin/sh", "/opt/program/serve.sh"]\n'
    )
    images = Images(
        noop=f"localhost/dockyard-bench/noop:{run}",
        serve=f"localhost/dockyard-bench/serve:{run}",
        process_noop=make_image(work / "process-noop", '["/bin/true"]'),
        process_serve=process_serve,
    )
    try:
        client.images.build(path=str(noop_folder), tag=images.noop, rm=True, forcerm=True)
        client.images.build(path=str(serve_folder), tag=images.serve, rm=True, forcerm=True)
        yield images
    finally:
        for name in (images.noop, images.serve):
            with contextlib.suppress(Exception):
                client.images.remove(name, force=True)


# -- where a docker runtime job's time goes ----------------------------------------------------


@dataclass
class Call:
    what: str
    start: float
    end: float


@dataclass
class RuntimeProbe:
    """Times the docker runtime's steps by wrapping methods of its instances (nothing in src/
    changes): the runtime's prepare_host / create_network / prepare_image, the volume's close,
    and every Engine API call of its two docker SDK clients."""

    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def attach(self, runtime: DockerRuntime) -> None:
        self._wrap(runtime, "prepare_image", "image: look up")
        self._wrap(runtime, "create_network", "network: create + inspect")
        prepare_host = runtime.prepare_host

        def timed_prepare_host(*args: Any, **kwargs: Any) -> Any:
            folder = self._time("volume: make + mount", prepare_host, *args, **kwargs)
            self._wrap(folder, "close", "volume: unmount")
            self._wrap(folder, "remove", "volume: unmount + remove")
            return folder

        runtime.prepare_host = timed_prepare_host  # type: ignore[method-assign]
        api = runtime.client.api
        for method, what in (
            ("create_container", "container: create"),
            ("head", "container: find the program (HEAD archive)"),
            ("start", "container: start"),
            ("inspect_container", "container: inspect"),
            ("remove_container", "container: remove"),
            ("remove_network", "network: remove"),
        ):
            self._wrap(api, method, what)
        self._wrap(runtime._streams, "wait", "container: wait for its exit")
        logs = runtime._streams.logs

        def timed_logs(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            yield from logs(*args, **kwargs)
            what = "logs: stdout stream" if kwargs.get("stdout") else "logs: stderr stream"
            self._record(what, start)

        runtime._streams.logs = timed_logs

    def take(self) -> list[Call]:
        with self.lock:
            taken, self.calls = self.calls, []
        return taken

    def _wrap(self, owner: Any, method: str, what: str) -> None:
        original = getattr(owner, method)

        def timed(*args: Any, **kwargs: Any) -> Any:
            return self._time(what, original, *args, **kwargs)

        setattr(owner, method, timed)

    def _time(self, what: str, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            self._record(what, start)

    def _record(self, what: str, start: float) -> None:
        with self.lock:
            self.calls.append(Call(what, start, time.perf_counter()))


# -- jobs --------------------------------------------------------------------------------------


@dataclass
class JobRun:
    name: str
    total_ms: float
    phases: dict[str, float]
    calls: list[Call]
    start: float


class Jobs:
    """No-op jobs on one engine under unique names, each checked Completed with its model.tar.gz."""

    def __init__(self, engine: Engine, probe: RuntimeProbe) -> None:
        self.engine = engine
        self.probe = probe
        self.count = 0

    def _name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}-{self.count}"

    def run(self, prefix: str, image: str) -> JobRun:
        name = self._name(prefix)
        request = CreateTrainingJobRequest.from_wire(job_body(name, image))  # type: ignore[arg-type]
        self.probe.take()
        submitted = time.time()
        start = time.perf_counter()
        self.engine.training_jobs.create(request)
        self.engine.training_jobs.wait(name)
        total = (time.perf_counter() - start) * 1000
        ended = time.time()
        return JobRun(name, total, self.check(name, submitted, ended), self.probe.take(), start)

    def run_http(self, sagemaker: Any, prefix: str, image: str) -> JobRun:
        name = self._name(prefix)
        submitted = time.time()
        start = time.perf_counter()
        sagemaker.create_training_job(**job_body(name, image))  # type: ignore[arg-type]
        while sagemaker.describe_training_job(TrainingJobName=name)["TrainingJobStatus"] not in (
            "Completed",
            "Failed",
            "Stopped",
        ):
            time.sleep(POLL_SECONDS)
        total = (time.perf_counter() - start) * 1000
        seen = time.time()
        self.engine.training_jobs.wait(name)
        self.probe.take()
        return JobRun(name, total, self.check(name, submitted, seen), [], start)

    def check(self, name: str, submitted: float, ended: float) -> dict[str, float]:
        described = describe(self.engine, name)
        if described["TrainingJobStatus"] != "Completed":
            raise RuntimeError(
                f"{name} ended {described['TrainingJobStatus']}: {described.get('FailureReason')}"
            )
        self.engine.store.head(BUCKET, f"out/{name}/output/model.tar.gz")
        return phases(described, submitted, ended)


def transient(call: Callable[[], object]) -> Callable[[], object]:
    """`call` tried again (3 times in all) when runc fails to start a container on a loaded
    machine, as the docker runtime does: the bare runs get the same second chance."""

    def attempts() -> object:
        for attempt in range(3):
            try:
                return call()
            except Exception as exc:
                if attempt == 2 or not any(words in str(exc) for words in _TRANSIENT):
                    raise
        return None

    return attempts


def bare_sdk_run(client: Any, image: str) -> None:
    """What a docker runtime host is at least: create, start, wait, remove, through the SDK."""
    api = client.api
    made = api.create_container(image, ["train"])
    try:
        api.start(made["Id"])
        code = api.wait(made["Id"])["StatusCode"]
    finally:
        api.remove_container(made["Id"], force=True)
    if code != 0:
        raise RuntimeError(f"{image} train exited {code}")


def podman_cli(*args: str) -> str:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"podman {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def measure_jobs(
    engine: Engine, client: Any, images: Images, probe: RuntimeProbe, api_url: str
) -> dict[str, Any]:
    jobs = Jobs(engine, probe)
    docker_runs: list[JobRun] = []
    http_runs: list[JobRun] = []
    process_runs: list[JobRun] = []
    key = face_key(engine.settings)
    sagemaker = boto3.client(
        "sagemaker", endpoint_url=api_url, region_name="us-east-1",
        aws_access_key_id=key.access_key_id, aws_secret_access_key=key.secret_access_key,
    )  # fmt: skip

    def keep(runs: list[JobRun], run: JobRun) -> float:
        runs.append(run)
        return run.total_ms

    samples = interleave(
        {
            BARE_CLI: lambda: timed_ms(
                transient(lambda: podman_cli("run", "--rm", images.noop, "train"))
            ),
            BARE_SDK: lambda: timed_ms(transient(lambda: bare_sdk_run(client, images.noop))),
            DOCKER_JOB: lambda: keep(docker_runs, jobs.run("docker", images.noop)),
            DOCKER_HTTP: lambda: keep(http_runs, jobs.run_http(sagemaker, "http", images.noop)),
            PROCESS_JOB: lambda: keep(process_runs, jobs.run("process", str(images.process_noop))),
        },
        JOB_REPS,
    )
    return {
        "samples": samples,
        "docker": docker_runs[1:],
        "http": http_runs[1:],
        "process": process_runs[1:],
    }


# -- endpoints ---------------------------------------------------------------------------------


def ping_ok(address: str) -> bool:
    connection = http.client.HTTPConnection(address, 8080, timeout=1.0)
    try:
        connection.request("GET", "/ping")
        response = connection.getresponse()
        response.read()
        return response.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


_ADDRESS = "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}"


def bare_serve(image: str) -> float:
    """`podman run -d IMAGE serve`, its address from `podman inspect`, /ping every 5 ms until it
    answers; the container is removed after the timing."""
    start = time.perf_counter()
    container = podman_cli("run", "-d", "--rm", image, "serve")
    try:
        address = ""
        deadline = time.monotonic() + 60
        while not address:
            # Empty while podman is still setting the container's network up, on a busy machine.
            address = (podman_cli("inspect", "--format", _ADDRESS, container).split() or [""])[0]
            if not address and time.monotonic() > deadline:
                state = podman_cli("inspect", "--format", "{{.State.Status}}", container)
                raise RuntimeError(f"{image} serve has no address (container {state})")
        while not ping_ok(address):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{image} serve did not answer /ping at {address}")
            time.sleep(POLL_SECONDS)
        return (time.perf_counter() - start) * 1000
    finally:
        podman_cli("rm", "--force", "--time", "0", container)


def measure_endpoints(engine: Engine, images: Images, probe: RuntimeProbe) -> dict[str, Any]:
    endpoints = Endpoints(engine)
    docker = endpoints.model("bench-docker", {"Image": images.serve})
    process = endpoints.model("bench-process", {"Image": str(images.process_serve)})
    samples = interleave(
        {
            BARE_SERVE: lambda: float(transient(lambda: bare_serve(images.serve))()),  # type: ignore[arg-type]
            DOCKER_ENDPOINT: lambda: endpoints.start(docker),
            PROCESS_ENDPOINT: lambda: endpoints.start(process),
        },
        ENDPOINT_REPS,
    )
    probe.take()
    return {"samples": samples}


def measure_containers(work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    with container_engine(work) as container, bench_images(container.client, work) as images:
        settings = Settings(
            home=work / "home", port=free_port(), store="local", database_url=None,
            stop_grace_seconds=2.0, sandbox_uid_base=private_uid_base(),
            docker_host=container.docker_host,
        )  # fmt: skip
        engine = Engine.open(settings)
        try:
            runtime = engine.ctx.runtimes.named("docker")
            assert isinstance(runtime, DockerRuntime)
            probe = RuntimeProbe()
            probe.attach(runtime)
            with api_server(engine) as url:
                print("containers 1/2: no-op jobs …", flush=True)
                jobs = measure_jobs(engine, container.client, images, probe, url)
                print("containers 2/2: endpoint starts …", flush=True)
                endpoints = measure_endpoints(engine, images, probe)
        finally:
            engine.close()
    return {"jobs": jobs, "endpoints": endpoints, "docker_host": container.docker_host}
