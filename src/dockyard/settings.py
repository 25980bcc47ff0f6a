"""The one typed settings object, read from DOCKYARD_* variables at the edge and passed down."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    database_url: str | None = None

    store: Literal["local", "s3"] = "local"
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None

    region: str = "us-east-1"
    account_id: str = "000000000000"
    runtime: Literal["process"] = "process"
    bwrap: str = "bwrap"

    # SIGTERM, then this long, then SIGKILL (StopTrainingJob / MaxRuntimeInSeconds).
    stop_grace_seconds: float = 120.0
    # Capacity the scheduler hands out; the machine's own by default.
    cpus: int = Field(default_factory=lambda: os.cpu_count() or 1)
    memory_gib: float = Field(default_factory=_machine_memory_gib)

    # Framework environments (dockyard/python:3.11, SageMaker framework image URIs): where they
    # are built (default <home>/envs), extra frameworks (a JSON file), the Python to build from
    # (default: the first python3.<minor> the sandbox can see).
    envs_dir: Path = Field(default=None, validate_default=True)
    frameworks_file: Path | None = None
    framework_python: str | None = None

    @field_validator("envs_dir", mode="before")
    @classmethod
    def _envs_dir_under_home(cls, value: object, info: ValidationInfo) -> object:
        home = info.data.get("home")  # absent when home itself was invalid
        return Path(home) / "envs" if value is None and home is not None else value

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
