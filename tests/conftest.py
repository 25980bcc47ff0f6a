"""Shared fixtures: a clean environment for every test, one real moto_server per session and
(tests/postgres.py) one real PostgreSQL server per session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_CLEARED_PREFIXES = ("DOCKYARD_", "SM_", "AWS_", "SAGEMAKER_")

# A real PostgreSQL for the tests that ask for one: postgres_url, postgres_server.
pytest_plugins = ["tests.postgres"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Every test starts with no DOCKYARD_/SM_/AWS_ variables and its own DOCKYARD_HOME; no
    host volume it mounted outlives it (a failed test may leave one, and a mounted volume would
    make pytest's removal of old temporary folders fail in a later run)."""
    for name in list(os.environ):
        if name.startswith(_CLEARED_PREFIXES):
            monkeypatch.delenv(name)
    home = tmp_path / "dockyard-home"
    monkeypatch.setenv("DOCKYARD_HOME", str(home))
    # Tests keep their data in tmp_path and use the repo's examples: both may be read and
    # written as local paths (the default, the home folder, holds neither).
    monkeypatch.setenv("DOCKYARD_LOCAL_PATHS", f"{tmp_path}:{EXAMPLES}")
    yield home
    from dockyard.runtimes.volumes import unmount_all_under

    unmount_all_under(tmp_path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, deadline_seconds: float = 30.0) -> None:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {deadline_seconds} s")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A real S3-compatible endpoint: moto_server on an ephemeral loopback port."""
    exe = shutil.which("moto_server", path=str(Path(sys.executable).parent)) or shutil.which(
        "moto_server"
    )
    if exe is None:
        raise RuntimeError("moto_server is not installed: pip install 'moto[server]'")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def container_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Docker-compatible engine: the one DOCKER_HOST names (.ci/run starts podman's
    service and sets it), else podman's service on this session's own socket."""
    from tests.containers import engine_at, start_service

    if os.environ.get("DOCKER_HOST"):
        yield engine_at(os.environ["DOCKER_HOST"])
    else:
        yield from start_service(tmp_path_factory.mktemp("podman"))


@pytest.fixture(scope="session")
def busybox(container_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The name of a busybox image in the engine (built once per machine)."""
    from tests.containers import busybox_image

    return busybox_image(container_engine.client, tmp_path_factory.mktemp("busybox"))


@pytest.fixture(scope="session")
def debian_python(container_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The name of a Debian bookworm image with python3-minimal (built once per machine)."""
    from tests.containers import debian_image

    work = tmp_path_factory.mktemp("debian-python")
    return debian_image(container_engine.client, work, ["python3-minimal"])


@pytest.fixture(scope="session")
def r_base(container_engine: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The name of a Debian bookworm image with R, randomForest, plumber and jsonlite (built
    once per machine), also tagged `localhost/r-base:4.2.2` so that `FROM r-base:4.2.2` (the R
    example's Dockerfile) builds on it."""
    from tests.containers import R_BASE, debian_image, tag_r_base

    work = tmp_path_factory.mktemp("r-base")
    name = debian_image(container_engine.client, work, list(R_BASE))
    tag_r_base(container_engine.client, name)
    return name


@pytest.fixture
def moto_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dummy credentials and a region, which is all moto and botocore need."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


class RunningServer:
    """A real dockyard server (uvicorn on an ephemeral loopback port) in this process."""

    def __init__(self, settings: Any) -> None:
        import uvicorn

        from dockyard.api.app import create_app
        from dockyard.engine.core import Engine

        self.settings = settings
        self.engine = Engine.open(settings)
        self.url = f"http://127.0.0.1:{settings.port}"
        config = uvicorn.Config(
            create_app(self.engine),
            host="127.0.0.1",
            port=settings.port,
            log_level="warning",
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_for_port(settings.port)

    @property
    def access_key(self) -> Any:
        """The server's key pair: the one it made in its home (as a local server does)."""
        from dockyard.api.keys import face_key

        return face_key(self.settings)

    def client(self, service: str) -> Any:
        return self.client_with_config(service, None)

    def client_with_config(self, service: str, config: Any) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key.access_key_id,
            aws_secret_access_key=self.access_key.secret_access_key,
            config=config,
        )

    def post(self, path: str, content: bytes, headers: dict[str, str], **signing: Any) -> Any:
        """A raw POST, signed with the server's key (for bodies boto3 would not send)."""
        return signed_request(self.url, "POST", path, content, headers, self.access_key, **signing)

    def close(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=60)


def signed_request(
    url: str,
    method: str,
    path: str,
    content: bytes,
    headers: dict[str, str],
    key: Any,
    *,
    service: str = "sagemaker",
    region: str = "us-east-1",
) -> Any:
    """Send one request signed with SigV4 by botocore's signer, as boto3 would sign it."""
    import httpx
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method=method, url=url + path, data=content, headers=headers)
    credentials = Credentials(key.access_key_id, key.secret_access_key)
    SigV4Auth(credentials, service, region).add_auth(request)
    return httpx.request(method, url + path, content=content, headers=dict(request.headers))


@pytest.fixture
def dockyard_settings(clean_env: Path) -> Any:
    from dockyard.settings import Settings

    return Settings(home=clean_env, port=free_port(), stop_grace_seconds=2.0)


def server_with_engine(home: Path, engine: Any, **settings: Any) -> Iterator[RunningServer]:
    """A server on `home` that reaches the container engine `engine` (the docker runtime's)."""
    from dockyard.settings import Settings

    running = RunningServer(
        Settings(
            home=home,
            port=free_port(),
            stop_grace_seconds=2.0,
            docker_host=engine.docker_host,
            **settings,
        )
    )
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def server(dockyard_settings: Any) -> Iterator[RunningServer]:
    running = RunningServer(dockyard_settings)
    try:
        yield running
    finally:
        running.close()


def wait_for_job(sagemaker: Any, name: str, deadline_seconds: float = 120.0) -> dict[str, Any]:
    """Poll DescribeTrainingJob until the job ends; fail the test at the deadline."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        described = sagemaker.describe_training_job(TrainingJobName=name)
        if described["TrainingJobStatus"] in ("Completed", "Failed", "Stopped"):
            return dict(described)
        time.sleep(0.1)
    raise TimeoutError(f"training job {name} did not end within {deadline_seconds} s")


def model_artifacts(server: RunningServer, job: str) -> dict[str, bytes]:
    """The files of a training job's model.tar.gz: what its hosts left in /opt/ml/model (a
    host's volume is unmounted when its job ends, so this is where a test reads them)."""
    sagemaker = server.client("sagemaker")
    uri = sagemaker.describe_training_job(TrainingJobName=job)["ModelArtifacts"]
    bucket, key = uri["S3ModelArtifacts"].removeprefix("s3://").split("/", 1)
    with tarfile.open(server.settings.store_root / bucket / key) as archive:
        return {
            member.name: archive.extractfile(member).read()  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile()
        }


def make_image(folder: Path, program: str, *, language: str = "python", extra: str = "") -> Path:
    """An image folder whose ENTRYPOINT runs `program` (Python or sh) with the argument."""
    folder.mkdir(parents=True, exist_ok=True)
    if language == "python":
        (folder / "program.py").write_text(program)
        entry = '["python3", "-u", "/opt/program/program.py"]'
        copy = "COPY program.py /opt/program/program.py"
    else:
        (folder / "program.sh").write_text(program)
        (folder / "program.sh").chmod(0o755)
        entry = '["/bin/sh", "/opt/program/program.sh"]'
        copy = "COPY program.sh /opt/program/program.sh"
    (folder / "Dockerfile").write_text(f"FROM scratch\n{copy}\n{extra}\nENTRYPOINT {entry}\n")
    return folder


def training_request(name: str, image: Path, **changes: Any) -> dict[str, Any]:
    """A CreateTrainingJob request shaped like the SageMaker Python SDK's."""
    body: dict[str, Any] = {
        "TrainingJobName": name,
        "RoleArn": "arn:aws:iam::111111111111:role/r",
        "AlgorithmSpecification": {
            "TrainingImage": str(image),
            "TrainingInputMode": "File",
            "EnableSageMakerMetricsTimeSeries": False,
        },
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 30},
        "StoppingCondition": {"MaxRuntimeInSeconds": 600},
        "DebugHookConfig": {"S3OutputPath": "s3://bucket/debug", "CollectionConfigurations": []},
        "ProfilerConfig": {
            "S3OutputPath": "s3://bucket/profiler",
            "ProfilingIntervalInMilliseconds": 500,
            "DisableProfiler": False,
        },
        "ProfilerRuleConfigurations": [],
        "EnableNetworkIsolation": False,
        "EnableInterContainerTrafficEncryption": False,
        "EnableManagedSpotTraining": False,
    }
    body.update(changes)
    return body


def channel(
    name: str, uri: str, distribution: str = "FullyReplicated", **extra: Any
) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": distribution,
            }
        },
        **extra,
    }


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="session")
def shared_envs_dir() -> Path:
    """`<repo>/.test-envs/`: framework environments are built once per machine and reused by
    every later test and test run (each is named by the hash of what it holds)."""
    folder = Path(__file__).resolve().parent.parent / ".test-envs"
    folder.mkdir(exist_ok=True)
    return folder


def tiny_wheel(folder: Path) -> Path:
    """A real wheel (a zip with its dist-info), made here so the test needs no index."""
    import base64
    import hashlib
    import zipfile

    files = {
        "tinydep/__init__.py": b"VALUE = 42\n",
        "tinydep-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n",
        "tinydep-1.0.dist-info/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = []
    for name, content in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(content).digest()).rstrip(b"=")
        record.append(f"{name},sha256={digest.decode()},{len(content)}")
    record.append("tinydep-1.0.dist-info/RECORD,,")
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "tinydep-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
        archive.writestr("tinydep-1.0.dist-info/RECORD", "\n".join(record) + "\n")
    return wheel
