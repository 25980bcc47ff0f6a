"""The one typed settings object, read from DOCKYARD_* variables at the edge and passed down."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _machine_memory_gib() -> float:
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / (1024 * 1024)
    except OSError:
        pass
    return 4.0


class Settings(BaseSettings):
    """Everything configurable, with the embedded defaults: state under ~/.dockyard, SQLite,
    the local object store, the process runtime, a server on 127.0.0.1:8411."""

    model_config = SettingsConfigDict(env_prefix="DOCKYARD_", frozen=True)

    home: Path = Field(default_factory=lambda: Path.home() / ".dockyard")
    host: str = "127.0.0.1"
    port: int = 8411
    # Set to talk to a server elsewhere; then the CLI starts no local server.
    endpoint_url: str | None = None
    # The metadata database: SQLite in the home by default, or a team's PostgreSQL
    # (postgresql://USER:PASSWORD@HOST:PORT/DATABASE; the server migrates it at start).
    database_url: str | None = None

    store: Literal["local", "s3"] = "local"
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None

    region: str = "us-east-1"
    account_id: str = "000000000000"
    # How hosts run: `process` (bubblewrap sandboxes) or `docker` (containers of a Docker engine,
    # or podman's Docker-compatible service).
    runtime: Literal["process", "docker"] = "process"
    bwrap: str = "bwrap"
    # The Docker engine of the docker runtime: DOCKYARD_DOCKER_HOST, else DOCKER_HOST (as the
    # docker CLI reads it), else the engine's usual socket.
    docker_host: str = Field(
        default="unix:///var/run/docker.sock",
        validation_alias=AliasChoices("DOCKYARD_DOCKER_HOST", "DOCKER_HOST", "docker_host"),
    )

    # Where hosts run: `local` (this machine) or `ray` (the nodes of a Ray cluster: the server
    # connects to DOCKYARD_RAY_ADDRESS, `auto` or host:port of the head, as a Ray driver).
    backend: Literal["local", "ray"] = "local"
    ray_address: str | None = None
    # The Ray namespace of this server's actors (default: one named by the home).
    ray_namespace: str | None = None
    # SIGTERM, then this long, then SIGKILL (StopTrainingJob / MaxRuntimeInSeconds).
    stop_grace_seconds: float = 120.0
    # Capacity the scheduler hands out; the machine's own by default.
    cpus: int = Field(default_factory=lambda: os.cpu_count() or 1)
    memory_gib: float = Field(default_factory=_machine_memory_gib)
    # GPUs the scheduler hands out. 0 by default, whatever the machine has: the process
    # runtime's sandboxes see no GPU device, so a host given one could not use it.
    gpus: int = Field(default=0, ge=0)
    # What a job or instance gets when its type has more GPUs than `gpus`: `cpu` runs it on the
    # CPU (SM_NUM_GPUS=0, a line in its log says so), `wait` keeps a training job Pending until
    # the GPUs are there, `fail` fails it (endpoints and transform jobs do not queue: under
    # `wait` they fail too, with a reason that says so).
    gpu_shortage: Literal["cpu", "wait", "fail"] = "cpu"

    # Framework environments (dockyard/python:3.11, SageMaker framework image URIs): where they
    # are built (default <home>/envs), extra frameworks (a JSON file), the Python to build from
    # (default: the first python3.<minor> the sandbox can see).
    envs_dir: Path = Field(default=None, validate_default=True)
    frameworks_file: Path | None = None
    framework_python: str | None = None

    # -- sandboxes: every host runs as its own unprivileged uid (from this base up), with at most
    # this many processes and threads, on a volume of VolumeSizeInGB (this default when a request
    # names none: endpoint variants and transform jobs usually do not).
    sandbox_uid_base: int = Field(default=2_000_000_000, ge=1000, le=2**31 - 65538)
    max_processes: int = Field(default=4096, ge=16)
    default_volume_gb: int = Field(default=30, ge=1, le=16384)
    slirp4netns: str = "slirp4netns"
    # Hosts of a cluster job (the Ray backend) each have a routed network on their node and an
    # address from this IPv4 range, one /24 per job or serving instance. Pick a range no node
    # reaches otherwise (not the nodes' own network, nothing the jobs must reach outside): the
    # nodes guard it, and a host reaches only its own job's /24 in it.
    hosts_cidr: str = "10.208.0.0/12"
    # Finished jobs' folders (their hosts' volumes) are removed this many hours after the job
    # ends; `dockyard jobs prune` removes them at once.
    job_folder_retention_hours: float = Field(default=24.0, ge=0)

    # --- the image registry behind the ECR API (issue 11). With `docker-registry` (the
    # distribution registry; Debian's package of that name) installed, the server runs one on
    # 127.0.0.1, storing under <home>/registry, with basic auth for user AWS and a password it
    # makes (GetAuthorizationToken hands it out). It starts with the first ECR request, and at
    # every server start once the home has a registry. `registry_port`: its port (0: a free one,
    # chosen once and kept, so repository URIs stay the same across restarts).
    registry_command: str = "docker-registry"
    registry_port: int = Field(default=0, ge=0, le=65535)
    # Or an existing registry (`http://host:port`, `https://host`), then dockyard starts none;
    # with the user and password it takes (None: a registry without auth).
    registry_url: str | None = None
    registry_username: str = "AWS"
    registry_password: SecretStr | None = None

    # --- auth (issue 8): the SigV4 key pairs the server accepts. One pair here and/or a keys file
    # in the AWS shared-credentials format (one section per user). With neither, the server makes
    # a pair in <home>/credentials on first start (loopback binds only); faces sign with this pair,
    # else with that file.
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    keys_file: Path | None = None
    # The web console (/console): how long a sign-in lasts before the user signs in again.
    console_session_hours: float = Field(default=12.0, gt=0, le=24 * 30)

    # --- metrics (issue 13). The router records every invocation's metrics (CloudWatch's
    # AWS/SageMaker per-second data, the Prometheus router series); false turns that off.
    router_metrics: bool = True
    # Endpoint metrics older than this are dropped (CloudWatch keeps 1-second data 15 days).
    metrics_retention_days: float = Field(default=15.0, gt=0)
    # GET /metrics (Prometheus): with a token, every scraper must send `Authorization: Bearer
    # <token>`; without one, only loopback clients may scrape.
    metrics_token: SecretStr | None = None

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        # The drivers dockyard has: sqlite3 and psycopg 3 (storage/database.py maps
        # postgresql:// to it).
        schemes = ("sqlite:///", "postgresql://", "postgres://", "postgresql+psycopg://")
        if value is not None and not value.startswith(schemes):
            shown = value.split("://", 1)[0] if "://" in value else value
            raise ValueError(
                f"DOCKYARD_DATABASE_URL must name SQLite or PostgreSQL, not {shown!r}: "
                "sqlite:///ABSOLUTE/PATH/dockyard.db or "
                "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
            )
        return value

    @field_validator("registry_url")
    @classmethod
    def _registry_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError(
                f"{value} is not a registry URL; DOCKYARD_REGISTRY_URL takes http://host:port "
                "(plain HTTP) or https://host[:port]"
            )
        return value

    @field_validator("hosts_cidr")
    @classmethod
    def _hosts_range(cls, value: str) -> str:
        try:
            network = ipaddress.IPv4Network(value)
        except ValueError as exc:
            raise ValueError(
                f"{value} is not an IPv4 network; DOCKYARD_HOSTS_CIDR takes one like "
                f"10.208.0.0/12 (with the host bits zero): {exc}"
            ) from exc
        if network.prefixlen > 23:
            raise ValueError(
                f"{value} is too small a hosts range: each job takes a /24 of it, so "
                "DOCKYARD_HOSTS_CIDR needs a prefix of /23 or shorter (like 10.208.0.0/12)"
            )
        return str(network)

    @field_validator("envs_dir", mode="before")
    @classmethod
    def _envs_dir_under_home(cls, value: object, info: ValidationInfo) -> object:
        home = info.data.get("home")  # absent when home itself was invalid
        return Path(home) / "envs" if value is None and home is not None else value

    # -- linksafe: local path roots and archive limits ---------------------------------------
    # Folders under which file:// URIs and local paths may be read or written for a job,
    # colon-separated like PATH (empty: none, s3:// only). Hidden and system folders and
    # DOCKYARD_HOME stay refused even under a root. Default: the server user's home folder.
    local_paths: Annotated[list[Path], NoDecode] = Field(default_factory=lambda: [Path.home()])
    # Archives dockyard unpacks (sourcedir.tar.gz, model.tar.gz): the most they may expand to,
    # the most members they may hold, and how many times their compressed size they may expand
    # to (a decompression bomb's ratio is in the hundreds or thousands; real ones are below 20).
    archive_max_bytes: int = Field(default=256 * 1024**3, gt=0)
    archive_max_members: int = Field(default=1_000_000, gt=0)
    archive_max_ratio: float = Field(default=100.0, gt=0)

    @field_validator("local_paths", mode="before")
    @classmethod
    def _colon_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(part).expanduser() for part in value.split(":") if part.strip()]
        return value

    @field_validator("local_paths")
    @classmethod
    def _absolute(cls, value: list[Path]) -> list[Path]:
        for path in value:
            if not path.is_absolute():
                raise ValueError(
                    f"{path} is not an absolute path; DOCKYARD_LOCAL_PATHS takes absolute folders "
                    "separated by ':', like PATH"
                )
        return value

    # -- validation: bounds on one API request (README "Security") ----------------------------
    # A control-plane request body larger than this is refused (413) while it is read, before
    # it is held whole; InvokeEndpoint keeps SageMaker's own 6 MB. The largest request SageMaker
    # allows (CreateModel with full environments) is about 3 MB.
    max_request_bytes: int = Field(default=8 * 1024 * 1024, ge=64 * 1024)
    # JSON nested deeper than this is refused before it is parsed. SageMaker's deepest request
    # shape is 7 levels; the parser and the checks recurse, so it stays far from Python's limit.
    max_json_depth: int = Field(default=64, ge=8, le=200)
    # The most instances one training job, one endpoint variant or one transform job may ask
    # for (ResourceLimitExceeded above it).
    max_instance_count: int = Field(default=100, ge=1)

    @property
    def jobs_dir(self) -> Path:
        return self.home / "jobs"

    @property
    def store_root(self) -> Path:
        return self.home / "s3"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def server_file(self) -> Path:
        return self.home / "server.json"

    @property
    def server_log(self) -> Path:
        return self.home / "server.log"

    @property
    def metadata_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'dockyard.db'}"
