"""The servers the serving benchmark compares, each started on a loopback port with 2 workers."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from common import HERE, REPO, free_port

WORKERS = 2  # the machine has 2 cores: every server gets 2 worker processes
APPS = HERE / "serving_apps"
START_SECONDS = 120.0  # MMS starts a JVM, then its Python workers
# The first endpoint builds dockyard's python:3.11 environment and a layer with scikit-learn.
ENDPOINT_SECONDS = 1200.0
STOP_GRACE_SECONDS = 15.0
CSV = "text/csv"
JSON = "application/json"


class ServerFailed(RuntimeError):
    """A server did not start, or answered wrongly."""


@dataclass(frozen=True)
class Model:
    """One of the two models, in every form the servers take it."""

    key: str  # "echo" or "rf"
    title: str
    base_dir: Path  # SAGEMAKER_BASE_DIR: model/ with code/inference.py
    mlflow_dir: Path  # the same model saved by MLflow
    csv_answer: bytes  # what a server taking CSV must answer
    json_answer: Any  # what MLflow must answer, parsed

    @property
    def model_dir(self) -> Path:
        return self.base_dir / "model"

    @property
    def tarball(self) -> Path:
        return self.base_dir / "model.tar.gz"


@dataclass(frozen=True)
class Setup:
    """What every server start needs: the bench venv, the request bodies, a scratch folder."""

    bench_bin: Path
    work: Path
    csv_body: Path
    json_body: Path
    envs_dir: Path  # dockyard's framework environments, kept between runs


@dataclass(frozen=True)
class Target:
    """A started server: where wrk sends its POSTs, with which body and headers."""

    url: str
    body: Path
    content_type: str
    accept: str
    pid: int  # the server's first process: its descendants are the server


Starter = Callable[[Setup, Model], contextlib.AbstractContextManager[Target]]


# -- processes ---------------------------------------------------------------------------------


def _env(**extra: str) -> dict[str, str]:
    """This process's environment without DOCKYARD_*/SAGEMAKER_*/AWS_* (so nothing of the
    caller's points a server elsewhere), plus `extra`."""
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DOCKYARD_", "SAGEMAKER_", "AWS_", "MLFLOW_"))
    }
    return {**keep, **extra}


def _tail(log: Path, lines: int = 12) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _get(url: str, timeout: float = 2.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def post(target: Target, timeout: float = 10.0) -> tuple[int, bytes]:
    request = urllib.request.Request(
        target.url,
        data=target.body.read_bytes(),
        headers={"Content-Type": target.content_type, "Accept": target.accept},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group we started, a grace period, then SIGKILL to what is left."""
    group = process.pid  # start_new_session: the group's id is the leader's pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    while time.monotonic() < deadline:
        process.poll()
        try:
            os.killpg(group, 0)  # anyone left in the group (MMS's Java outlives its launcher)?
        except ProcessLookupError:
            break
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)


@contextlib.contextmanager
def server_process(
    argv: list[str], env: dict[str, str], log: Path, ready_url: str, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Start `argv` in its own process group, wait until `ready_url` answers 200, stop it after."""
    with open(log, "ab") as out:
        process = subprocess.Popen(
            argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
            stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + START_SECONDS
        while _get(ready_url) != 200:
            if process.poll() is not None:
                raise ServerFailed(f"exited with {process.returncode} at start:\n{_tail(log)}")
            if time.monotonic() > deadline:
                raise ServerFailed(f"{ready_url} not ready in {START_SECONDS:g} s:\n{_tail(log)}")
            time.sleep(0.1)
        yield process
    finally:
        _stop(process)


def _checked(target: Target, model: Model, log: Path) -> Target:
    """The target, once one request got the right answer (MMS may load its workers late)."""
    deadline = time.monotonic() + 60
    status, body = 0, b""
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            status, body = post(target)
            if status == 200 and _right(target, model, body):
                return target
        time.sleep(0.2)
    raise ServerFailed(f"wrong answer: {status} {body[:200]!r}:\n{_tail(log)}")


def _right(target: Target, model: Model, body: bytes) -> bool:
    if target.content_type == JSON:
        with contextlib.suppress(ValueError):
            return bool(json.loads(body) == model.json_answer)
        return False
    return body == model.csv_answer


# -- the servers -------------------------------------------------------------------------------


@contextlib.contextmanager
def raw_asgi(setup: Setup, model: Model) -> Iterator[Target]:
    """The floor: serving_apps/raw_asgi.py under uvicorn with httptools and uvloop."""
    port, log = free_port(), setup.work / f"raw-asgi-{model.key}.log"
    argv = [
        str(setup.bench_bin / "uvicorn"), "raw_asgi:app", "--app-dir", str(APPS),
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS),
        "--http", "httptools", "--loop", "uvloop", "--lifespan", "off", "--no-access-log",
        "--log-level", "warning",
    ]  # fmt: skip
    env = _env(BENCH_MODEL_DIR=str(model.model_dir))
    with server_process(argv, env, log, f"http://127.0.0.1:{port}/ping") as process:
        url = f"http://127.0.0.1:{port}/invocations"
        yield _checked(Target(url, setup.csv_body, CSV, CSV, process.pid), model, log)


def _serving_env(model: Model, port: int) -> dict[str, str]:
    return _env(
        SAGEMAKER_BASE_DIR=str(model.base_dir),
        SAGEMAKER_PROGRAM="inference.py",
        SAGEMAKER_MODEL_SERVER_WORKERS=str(WORKERS),
        SAGEMAKER_BIND_TO_PORT=str(port),
        DOCKYARD_SERVING_HOST="127.0.0.1",
    )


@contextlib.contextmanager
def dockyard_direct(setup: Setup, model: Model) -> Iterator[Target]:
    """`python -m dockyard.serving` from this repository's src/, in the bench venv (the model
    needs scikit-learn; the toolkit itself is stdlib only)."""
    port, log = free_port(), setup.work / f"dockyard-serving-{model.key}.log"
    env = {**_serving_env(model, port), "PYTHONPATH": str(REPO / "src")}
    argv = [str(setup.bench_bin / "python"), "-m", "dockyard.serving"]
    with server_process(argv, env, log, f"http://127.0.0.1:{port}/ping") as process:
        url = f"http://127.0.0.1:{port}/invocations"
        yield _checked(Target(url, setup.csv_body, CSV, CSV, process.pid), model, log)


@contextlib.contextmanager
def mlflow_server(setup: Setup, model: Model) -> Iterator[Target]:
    """`mlflow models serve --env-manager local -w 2` of the same model saved by MLflow."""
    port, log = free_port(), setup.work / f"mlflow-{model.key}.log"
    argv = [
        str(setup.bench_bin / "mlflow"), "models", "serve", "-m", str(model.mlflow_dir),
        "--env-manager", "local", "-w", str(WORKERS), "-h", "127.0.0.1", "-p", str(port),
    ]  # fmt: skip
    # MLflow runs `uvicorn` by name through a shell: the bench venv's must come first on PATH.
    env = _env(
        PATH=f"{setup.bench_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        MLFLOW_DISABLE_TELEMETRY="true",
        DO_NOT_TRACK="true",
    )
    with server_process(argv, env, log, f"http://127.0.0.1:{port}/ping") as process:
        url = f"http://127.0.0.1:{port}/invocations"
        yield _checked(Target(url, setup.json_body, JSON, JSON, process.pid), model, log)


def _port_below_32767() -> int:
    """A free loopback port that MMS accepts: its address parser refuses 32767 and above,
    which is where Linux hands out ephemeral ports."""
    for _ in range(200):
        port = random.randint(20000, 32766)
        with contextlib.suppress(OSError), socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
            return port
    raise ServerFailed("no free port below 32767 for MMS")


def _mms_config(inference_port: int, management_port: int, tmp: Path) -> str:
    """What sagemaker-inference's start_model_server writes to /etc/sagemaker-mms.properties,
    but bound to loopback, with the JVM's temporary files in our folder."""
    return "\n".join(
        [
            "enable_envvars_config=true",
            "decode_input_request=false",
            "load_models=ALL",
            f"default_workers_per_model={WORKERS}",
            f"inference_address=http://127.0.0.1:{inference_port}",
            f"management_address=http://127.0.0.1:{management_port}",
            "default_service_handler=sagemaker_inference.default_handler_service",
            "default_response_timeout=60",
            f"vmargs=-XX:-UseContainerSupport -Djava.io.tmpdir={tmp}",
            "",
        ]
    )


@contextlib.contextmanager
def mms_server(setup: Setup, model: Model) -> Iterator[Target]:
    """sagemaker-inference's default handler service on Multi Model Server, the model's
    inference.py as its user module: what start_model_server runs, minus its /etc file."""
    folder = setup.work / f"mms-{model.key}"
    tmp = folder / "tmp"
    tmp.mkdir(parents=True)
    port, log = _port_below_32767(), setup.work / f"mms-{model.key}.log"
    config = folder / "config.properties"
    management = _port_below_32767()
    while management == port:
        management = _port_below_32767()
    config.write_text(_mms_config(port, management, tmp))
    log4j = next((setup.bench_bin.parent / "lib").glob("python*/site-packages/sagemaker_inference"))
    argv = [
        str(setup.bench_bin / "multi-model-server"), "--start", "--foreground",
        "--model-store", "/", "--mms-config", str(config),
        "--log-config", str(log4j / "etc" / "log4j2.xml"),
        "--models", f"model={model.model_dir}",
    ]  # fmt: skip
    env = {
        **_serving_env(model, port),
        # MMS starts its Python workers with `python` from PATH; sagemaker-inference puts the
        # user's code folder on PYTHONPATH so the handler service can import inference.py.
        "PATH": f"{setup.bench_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(model.model_dir / "code"),
        "TMPDIR": str(tmp),  # MMS's pid file and worker sockets
    }
    with server_process(argv, env, log, f"http://127.0.0.1:{port}/ping", cwd=folder) as process:
        url = f"http://127.0.0.1:{port}/invocations"
        yield _checked(Target(url, setup.csv_body, CSV, CSV, process.pid), model, log)


@contextlib.contextmanager
def dockyard_router(
    setup: Setup, model: Model, settings: dict[str, str] | None = None, tag: str = ""
) -> Iterator[Target]:
    """The dockyard server (`python -m dockyard.api.server`) with one endpoint of the model,
    made with boto3 as a user would, invoked at /endpoints/NAME/invocations. `settings`: more
    DOCKYARD_* variables; `tag` tells apart the homes and logs of servers up together."""
    port, log = free_port(), setup.work / f"dockyard-router-{model.key}{tag}.log"
    home = setup.work / f"dockyard-home-{model.key}{tag}"
    key_id, secret = "BENCH", secrets.token_urlsafe(30)
    env = _env(
        DOCKYARD_HOME=str(home),
        DOCKYARD_HOST="127.0.0.1",
        DOCKYARD_PORT=str(port),
        DOCKYARD_ENVS_DIR=str(setup.envs_dir),
        DOCKYARD_ACCESS_KEY_ID=key_id,
        DOCKYARD_SECRET_ACCESS_KEY=secret,
        DOCKYARD_LOCAL_PATHS=str(setup.work),  # the models' file:// ModelDataUrl
        **(settings or {}),
    )
    url = f"http://127.0.0.1:{port}"
    argv = [sys.executable, "-m", "dockyard.api.server"]
    with server_process(argv, env, log, f"{url}/healthz") as process:
        sagemaker = boto3.client(
            "sagemaker", endpoint_url=url, region_name="us-east-1",
            aws_access_key_id=key_id, aws_secret_access_key=secret,
        )  # fmt: skip
        name = f"bench-{model.key}"
        try:
            _create_endpoint(sagemaker, name, model)
            _wait_in_service(sagemaker, name, log)
            invocations = presigned(
                f"{url}/endpoints/{name}/invocations", setup.csv_body.read_bytes(), key_id, secret
            )
            yield _checked(Target(invocations, setup.csv_body, CSV, CSV, process.pid), model, log)
        finally:
            with contextlib.suppress(Exception):
                sagemaker.delete_endpoint(EndpointName=name)
                _wait_deleted(sagemaker, name)


def presigned(url: str, body: bytes, key_id: str, secret: str) -> str:
    """wrk replays one request, so it is signed once, in the SigV4 query form (a presigned
    URL) over its body and headers: the router checks its signature on every request."""

    class OverBody(SigV4QueryAuth):
        def payload(self, request: AWSRequest) -> str:
            return hashlib.sha256(body).hexdigest()

    request = AWSRequest(method="POST", url=url, headers={"Content-Type": CSV, "Accept": CSV})
    signer = OverBody(Credentials(key_id, secret), "sagemaker", "us-east-1", expires=86400)
    signer.add_auth(request)
    return str(request.url)


def _create_endpoint(sagemaker: Any, name: str, model: Model) -> None:
    sagemaker.create_model(
        ModelName=name,
        ExecutionRoleArn="arn:aws:iam::111111111111:role/bench",
        PrimaryContainer={
            "Image": "dockyard/python:3.11",
            "ModelDataUrl": f"file://{model.tarball}",
            "Environment": {
                "SAGEMAKER_PROGRAM": "inference.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": f"file://{model.model_dir / 'code'}",
                "SAGEMAKER_MODEL_SERVER_WORKERS": str(WORKERS),
            },
        },
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=name,
        ProductionVariants=[
            {
                "VariantName": "main",
                "ModelName": name,
                "InitialInstanceCount": 1,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=name)


def _wait_in_service(sagemaker: Any, name: str, log: Path) -> None:
    deadline = time.monotonic() + ENDPOINT_SECONDS
    while time.monotonic() < deadline:
        described = sagemaker.describe_endpoint(EndpointName=name)
        status = described["EndpointStatus"]
        if status == "InService":
            return
        if status in ("Failed", "OutOfService"):
            raise ServerFailed(f"endpoint {status}: {described.get('FailureReason')}")
        time.sleep(0.5)
    raise ServerFailed(f"endpoint not InService in {ENDPOINT_SECONDS:g} s:\n{_tail(log)}")


def _wait_deleted(sagemaker: Any, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            sagemaker.describe_endpoint(EndpointName=name)
        except sagemaker.exceptions.ClientError:
            return
        time.sleep(0.2)


SERVERS: dict[str, Starter] = {
    "raw ASGI (uvicorn)": raw_asgi,
    "dockyard.serving": dockyard_direct,
    "dockyard via the router": dockyard_router,
    "MLflow scoring server": mlflow_server,
    "sagemaker-inference + MMS": mms_server,
}
